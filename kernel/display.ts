// How values and errors look in a notebook: mime bundles for `execute_result`/`display_data` (text/plain is
// util.inspect; HTML from `_repr_html_()`, `toHTML()` or an arquero table; tensors and images: rich-output.ts) and `error` contents with a traceback
// trimmed of kernel and tslab frames.
import * as path from 'node:path';
import { inspect } from 'node:util';
import type { ErrorContent } from './messages';
import { imageBundle, isTensorLike, tensorBundle } from './rich-output';

const TABLE_ROWS = 20;

/** An interrupt (SIGINT or interrupt_request) ended the execution. */
export class KernelInterrupt extends Error {
  constructor(message = 'interrupted') {
    super(message);
    this.name = 'KeyboardInterrupt';
  }
}

type Fn = (...a: unknown[]) => unknown;
const method = (v: unknown, name: string): Fn | null => {
  if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return null;
  const f = (v as Record<string, unknown>)[name];
  return typeof f === 'function' ? (f as Fn).bind(v) : null;
};

/** arquero ColumnTable, recognised by shape so the kernel does not load arquero to check. */
export function isArqueroTable(v: unknown): boolean {
  return method(v, 'numRows') !== null && method(v, 'columnNames') !== null && method(v, 'toHTML') !== null;
}

/** The `data` of a display bundle for any value. */
export function mimeBundle(value: unknown): Record<string, unknown> {
  const custom = method(value, '_repr_mimebundle_');
  if (custom) {
    const b = custom() as Record<string, unknown> | null;
    if (b && typeof b === 'object') return { 'text/plain': plainText(value), ...b };
  }
  if (isTensorLike(value)) return tensorBundle(value);
  const image = imageBundle(value);
  if (image) return image;
  const data: Record<string, unknown> = { 'text/plain': plainText(value) };
  const reprHtml = method(value, '_repr_html_');
  if (reprHtml) data['text/html'] = String(reprHtml());
  else if (isArqueroTable(value)) {
    const t = value as { numRows(): number; columnNames(): string[] };
    const n = t.numRows();
    const note = `<p style="font-size:small">${n} rows × ${t.columnNames().length} columns${n > TABLE_ROWS ? `; the first ${TABLE_ROWS} shown` : ''}</p>`;
    data['text/html'] = String(method(value, 'toHTML')!({ limit: TABLE_ROWS })) + note;
  } else {
    const toHTML = method(value, 'toHTML');
    if (toHTML && typeof value === 'object') data['text/html'] = String(toHTML());
  }
  return data;
}

function plainText(value: unknown): string {
  if (isArqueroTable(value)) {
    const t = value as { numRows(): number; columnNames(): string[]; toMarkdown(o: unknown): string };
    return `ColumnTable ${t.numRows()} rows × ${t.columnNames().length} columns\n${t.toMarkdown({ limit: TABLE_ROWS })}`;
  }
  return inspect(value, { depth: 4, maxArrayLength: 100, maxStringLength: 10_000, breakLength: 100 });
}

const KERNEL_DIR = __dirname + path.sep;
const HIDDEN_FRAME = /\(node:|at node:|[\\/]node_modules[\\/](tslab|tsx)[\\/]/;

/** Stack lines a notebook user can act on: the cell's and the library's, not the kernel's or tslab's. */
function userFrames(stack: string): string[] {
  return stack
    .split('\n')
    .filter((l) => /^\s+at /.test(l))
    .filter((l) => !HIDDEN_FRAME.test(l) && !l.includes(KERNEL_DIR))
    .map((l) => l.replace(/evalmachine\.<anonymous>/g, '<cell>'));
}

/** `error` content for a thrown value. */
export function errorContent(e: unknown): ErrorContent {
  if (!(e instanceof Error)) {
    const v = inspect(e, { depth: 2 });
    return { ename: 'Thrown', evalue: v, traceback: [`Thrown: ${v}`] };
  }
  const pathOf = (e as { path?: unknown }).path;
  let evalue = e.message;
  if (typeof pathOf === 'string' && pathOf !== '' && !evalue.includes(pathOf)) evalue = `${evalue} (at ${pathOf})`;
  const traceback = [`${e.name}: ${evalue}`, ...userFrames(e.stack ?? '')];
  let cause = (e as { cause?: unknown }).cause;
  for (let depth = 0; cause instanceof Error && depth < 3; depth++) {
    traceback.push(`Caused by ${cause.name}: ${cause.message}`, ...userFrames(cause.stack ?? ''));
    cause = (cause as { cause?: unknown }).cause;
  }
  return { ename: e.name, evalue, traceback };
}

/** TypeScript diagnostics from tslab's converter, one per line as `line:col - message`. */
export function compileErrorContent(lines: string[]): ErrorContent {
  const first = lines[0] ?? 'the cell does not compile';
  return { ename: 'CompileError', evalue: first.replace(/^\S*\d+:\d+ - /, ''), traceback: lines.map((l) => `CompileError: ${l}`) };
}
