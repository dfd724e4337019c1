// The typed `hs` against the notebooks we ship: every code cell of notebooks/ compiles against the library's
// generated declarations (kernel/cell-types.ts) the way the kernel types cells (tslab's compiler and options,
// non-strict), with each magic's `--as` variable typed as the kernel binds it. Before summaries were typed per
// kind, a typed `hs` broke every notebook that read one (#16); this keeps the two in step without executing them.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { ensureCellTypes } from '../../kernel/cell-types';
import { defaultMagics } from '../../kernel/magics';
import { resultType } from '../../kernel/magics/experiment-runner';
import { EXPERIMENT_KINDS, experimentDefinitions } from '../../src/experiments';
import { tempDir } from './jupyter-env';

const ts = require('@tslab/typescript-for-tslab') as typeof import('typescript');
const REPO = path.resolve(__dirname, '..', '..');
const NOTEBOOKS = ['labs', 'paper'].flatMap((d) =>
  fs.readdirSync(path.join(REPO, 'notebooks', d)).filter((f) => f.endsWith('.ipynb')).map((f) => path.join(REPO, 'notebooks', d, f)),
);
// Errors of the concatenation, not of the cells: tslab lets a later cell declare a name again.
const CONCATENATION = new Set([2451]);

let api = '';
let tmp = '';
before(() => {
  tmp = tempDir('hopscope-cell-types-');
  // The tree `hopscope install` makes (test/kernel/jupyter-env.ts installs beside this file): built once.
  api = ensureCellTypes();
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The type a magic line binds its `--as` variable to, as the kernel does (MagicContext.keep). */
function bindType(magic: string): string | undefined {
  const def = experimentDefinitions().find((d) => d.magic.name === magic);
  if (def) return resultType({ EXPERIMENT_KINDS }, def.kind);
  return defaultMagics().get(magic, false)?.binds;
}

/** A notebook's code cells as one module: the kernel's prelude, then each cell, magic lines as their bindings. */
function asModule(nb: string): string {
  const cells = (JSON.parse(fs.readFileSync(nb, 'utf8')).cells as { cell_type: string; source: string | string[] }[]).filter((c) => c.cell_type === 'code');
  const imp = (t: string) => `import(${JSON.stringify(api)}).${t}`;
  let out = `export {};\nconst hs: ${imp('Hs')} = (globalThis as any).hs;\nconst widgets: ${imp('WidgetsApi')} = (globalThis as any).widgets;\n`;
  for (const c of cells) {
    const src = Array.isArray(c.source) ? c.source.join('') : c.source;
    out += src
      .split('\n')
      .map((line) => {
        const m = /^%(\w+).*?(?: --as (\w+))?\s*$/.exec(line);
        if (!m) return line;
        const t = bindType(m[1]);
        return m[2] ? `let ${m[2]}: ${t ? imp(t) : 'any'} = undefined as any;` : '';
      })
      .join('\n');
    out += '\n';
  }
  return out;
}

test('the typed hs: every code cell of the shipped notebooks compiles (summaries typed by kind)', () => {
  assert.ok(NOTEBOOKS.length >= 10, NOTEBOOKS.join(', '));
  const options: import('typescript').CompilerOptions = {
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    esModuleInterop: true,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts'],
    skipLibCheck: true,
    resolveJsonModule: true,
    noEmit: true,
    types: ['node'],
    typeRoots: [path.join(REPO, 'node_modules', '@types')],
  };
  // Each notebook is one module that exists only in memory, beside the notebook (so `import './checks'` resolves
  // as in the kernel); one program for all of them reads the library's declarations once.
  const modules = new Map(NOTEBOOKS.map((nb) => [nb.replace(/\.ipynb$/, '.cells.ts'), { nb, code: asModule(nb) }]));
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => {
    const m = modules.get(path.resolve(name));
    return m ? ts.createSourceFile(name, m.code, lang) : getSourceFile(name, lang, ...rest);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => modules.has(path.resolve(name)) || fileExists(name);
  const program = ts.createProgram([...modules.keys()], options, host);
  const problems: string[] = [];
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const m = d.file && modules.get(path.resolve(d.file.fileName));
    if (!m || CONCATENATION.has(d.code)) continue;
    const line = m.code.slice(0, d.start).split('\n').length;
    problems.push(`${path.relative(REPO, m.nb)}: ${m.code.split('\n')[line - 1].trim().slice(0, 120)}\n    ${ts.flattenDiagnosticMessageText(d.messageText, '\n    ')}`);
  }
  assert.equal(modules.size, NOTEBOOKS.length);
  assert.deepEqual(problems, []);
});

test('a second builder waits for the build that holds the lock instead of building beside it', () => {
  const dir = path.join(tmp, 'locked', 'cell-types');
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  fs.writeFileSync(`${dir}.lock`, String(process.pid)); // a live process holds it
  const t0 = Date.now();
  assert.throws(() => ensureCellTypes(dir, 600), /timed out after 0\.6 s waiting for the cell types build/);
  assert.ok(Date.now() - t0 >= 600);
  assert.equal(fs.existsSync(dir), false, 'nothing was built beside the holder');
});

test('a result is typed by its kind; an unknown kind or an untyped spec gives the untyped result', () => {
  const code = `
    import type { Hs, ResultOf } from ${JSON.stringify(api.replace(/\.d\.ts$/, ''))};
    declare const hs: Hs;
    declare const model: import(${JSON.stringify(api)}).Model;
    declare const loose: any;
    export async function f() {
      const probe = await hs.runExperiment({ kind: 'probe', limit: 2 }, { model });
      const layer: number | null = probe.summary.resolution.image;
      const xp: ResultOf<'cross-patch'> = await hs.runExperiment({ kind: 'cross-patch' }, { model });
      const sw: number | null = xp.summary.switchLayer;
      const any = await hs.runExperiment(loose, { model });
      const n: number = any.summary.switchLayer;                        // error 1: unknown
      await hs.runExperiment({ kind: 'probe', limt: 2 }, { model });    // error 2: misspelt field
      return [layer, sw, n];
    }`;
  const file = path.join(tmp, 'typed.ts');
  fs.writeFileSync(file, code);
  const program = ts.createProgram([file], { strict: true, noEmit: true, skipLibCheck: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, esModuleInterop: true, types: ['node'], typeRoots: [path.join(REPO, 'node_modules', '@types')] });
  const errors = ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName === file);
  const lines = errors.map((d) => code.slice(0, d.start).split('\n').length);
  assert.deepEqual(lines, [12, 13], errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' ')).join('\n'));
});
