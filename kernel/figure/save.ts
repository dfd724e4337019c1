// `hs.saveFigure(view, 'fig.png')` and the magics' `--save FILE`: any hopscope view (a widget a magic showed,
// an experiment result, or a view state {view, title, data}) written as SVG or PNG from the kernel itself, so a
// headless nbconvert run writes the paper's figures. Drawn by svg.ts; PNG through sharp (librsvg), which the
// library already depends on for images: no browser, no devDependency at run time.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AnyViewState, ValidationResult } from '../../src/report/views';
import { InputError } from '../../src/errors';
import { type ExperimentResult, type View, loadLibrary } from '../library';
import { viewToSvg } from './svg';

/** PNGs are drawn at twice the SVG's size (sharp rasterises at this density; 72 dpi = 1×). */
const PNG_DENSITY = 144;

function isResult(v: unknown): v is ExperimentResult {
  return typeof v === 'object' && v !== null && typeof (v as ExperimentResult).kind === 'string' && 'table' in v && 'spec' in v;
}

/** The view state to draw for whatever the user passed. */
export function viewStateOf(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) throw new InputError(`saveFigure: expected a view, a widget or an experiment result, got ${v === null ? 'null' : typeof v}`);
  // A widget handle (what widgets.create returned, or `widgets.list()[i]`): its current state.
  const state = (v as { state?: unknown }).state;
  if (typeof (v as { send?: unknown }).send === 'function' && state && typeof state === 'object') return state;
  if (isResult(v)) {
    return loadLibrary('saveFigure').viewFromResult(v) as View;
  }
  return v;
}

export function figureSvg(v: unknown): string {
  const { validateViewState } = require('../../src/report/views') as { validateViewState(raw: unknown): ValidationResult };
  const r = validateViewState(viewStateOf(v));
  if (!r.ok) {
    throw new InputError(
      r.empty
        ? `saveFigure: the view "${r.view ?? '?'}" has no data yet${r.progress ? ` (running: ${r.progress.done}/${r.progress.total})` : ''}; save it when the run has finished`
        : `saveFigure: not a drawable view (${r.problems.slice(0, 3).join('; ')})`,
    );
  }
  return viewToSvg(r.state as AnyViewState);
}

/** Writes the figure; the format comes from the extension (.svg, .png). Returns the absolute path. */
export async function saveFigure(v: unknown, file: string): Promise<string> {
  if (typeof file !== 'string' || file === '') throw new InputError('saveFigure: give a file name ending in .png or .svg');
  const out = path.resolve(file);
  const ext = path.extname(out).toLowerCase();
  if (ext !== '.svg' && ext !== '.png') {
    throw new InputError(`saveFigure: ${file}: unsupported format "${ext || '(none)'}"; use .png or .svg (PDF needs a browser: convert the SVG)`);
  }
  const svg = figureSvg(v);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  if (ext === '.svg') fs.writeFileSync(out, svg);
  else {
    const sharp = require('sharp') as typeof import('sharp').default;
    await sharp(Buffer.from(svg), { density: PNG_DENSITY }).png().toFile(out);
  }
  return out;
}
