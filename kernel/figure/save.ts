// `hs.saveFigure(view, 'fig.png')` and the magics' `--save FILE`: any hopscope view (a widget a magic showed,
// an experiment result, or a view state {view, title, data}) written as SVG, PNG or PDF from the kernel itself,
// so a headless nbconvert run writes the paper's figures. Drawn by svg.ts; PNG through sharp (librsvg), which
// the library already depends on for images; PDF through PDFKit with svg-to-pdfkit (vector, text as text), in
// DejaVu Sans from the dejavu-fonts-ttf package: the font the SVG names and librsvg draws the PNG with, embedded,
// so the PDF looks the same on a machine without it and "≈", "→" and accents print. No browser.
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
  if (typeof file !== 'string' || file === '') throw new InputError('saveFigure: give a file name ending in .png, .svg or .pdf');
  const out = path.resolve(file);
  const ext = path.extname(out).toLowerCase();
  if (ext !== '.svg' && ext !== '.png' && ext !== '.pdf') {
    throw new InputError(`saveFigure: ${file}: unsupported format "${ext || '(none)'}"; use .png, .svg or .pdf`);
  }
  const svg = figureSvg(v);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  if (ext === '.svg') fs.writeFileSync(out, svg);
  else if (ext === '.pdf') fs.writeFileSync(out, await svgToPdf(svg));
  else {
    const sharp = require('sharp') as typeof import('sharp').default;
    await sharp(Buffer.from(svg), { density: PNG_DENSITY }).png().toFile(out);
  }
  return out;
}

/** The parts of PDFKit's document this file uses (the package ships no types). */
interface PdfDoc {
  registerFont(name: string, file: string): void;
  on(event: 'data', fn: (chunk: Buffer) => void): void;
  on(event: 'end', fn: () => void): void;
  on(event: 'error', fn: (e: Error) => void): void;
  end(): void;
}

/** One page the size of the SVG (1 SVG px = 1 pt), vector shapes, text in embedded DejaVu Sans subsets. */
export function svgToPdf(svg: string): Promise<Buffer> {
  const m = /<svg[^>]*\bwidth="([\d.]+)"[^>]*\bheight="([\d.]+)"/.exec(svg);
  if (!m) throw new InputError('saveFigure: the figure has no width/height');
  const [width, height] = [Number(m[1]), Number(m[2])];
  const PDFDocument = require('pdfkit') as new (o: Record<string, unknown>) => PdfDoc;
  const SVGtoPDF = require('svg-to-pdfkit') as (doc: PdfDoc, svg: string, x: number, y: number, o: Record<string, unknown>) => void;
  const fonts = path.join(path.dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf');
  // No creation date in the file: the same figure gives the same bytes.
  const doc = new PDFDocument({ size: [width, height], margin: 0, compress: true, info: { Creator: 'hopscope', Producer: 'hopscope', CreationDate: new Date(0) } });
  doc.registerFont('DejaVuSans', path.join(fonts, 'DejaVuSans.ttf'));
  doc.registerFont('DejaVuSans-Bold', path.join(fonts, 'DejaVuSans-Bold.ttf'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    doc.on('data', (c) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
    const warnings: string[] = [];
    SVGtoPDF(doc, svg, 0, 0, {
      width,
      height,
      fontCallback: (_family: string, bold: boolean) => (bold ? 'DejaVuSans-Bold' : 'DejaVuSans'),
      warningCallback: (w: string) => warnings.push(w),
    });
    // svg.ts writes only what svg-to-pdfkit draws; a warning means a figure would lose something.
    if (warnings.length) reject(new InputError(`saveFigure: the PDF could not draw: ${warnings.slice(0, 3).join('; ')}`));
    else doc.end();
  });
}
