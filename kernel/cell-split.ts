// Splits a cell into TypeScript runs and magics. A line starting with `%` is never valid TypeScript, so
// `%name args` lines are line magics wherever they are, and `%%name args` on the first line makes the whole
// rest of the cell that magic's body. Segments run in order; TypeScript declarations carry across them.

export type Segment =
  | { kind: 'ts'; code: string; /** 0-based line of the run's first line in the cell */ line: number }
  | { kind: 'magic'; name: string; args: string; line: number; body?: string };

const LINE_MAGIC = /^\s*%([A-Za-z_][\w-]*)(?:\s+(.*))?$/;
const CELL_MAGIC = /^\s*%%([A-Za-z_][\w-]*)(?:\s+(.*))?$/;

export class CellSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function splitCell(code: string): Segment[] {
  const lines = code.split('\n');
  const first = lines.findIndex((l) => l.trim() !== '');
  if (first >= 0) {
    const m = CELL_MAGIC.exec(lines[first]);
    if (m) return [{ kind: 'magic', name: m[1], args: (m[2] ?? '').trim(), line: first, body: lines.slice(first + 1).join('\n') }];
  }
  const out: Segment[] = [];
  let ts: string[] = [];
  let tsStart = 0;
  const flushTs = () => {
    if (ts.some((l) => l.trim() !== '')) out.push({ kind: 'ts', code: ts.join('\n'), line: tsStart });
    ts = [];
  };
  lines.forEach((l, i) => {
    if (CELL_MAGIC.test(l)) {
      throw new CellSyntaxError(`line ${i + 1}: cell magic ${l.trim().split(/\s/)[0]} must be the first line of the cell`);
    }
    const m = LINE_MAGIC.exec(l);
    if (m) {
      flushTs();
      out.push({ kind: 'magic', name: m[1], args: (m[2] ?? '').trim(), line: i });
      tsStart = i + 1;
      return;
    }
    if (ts.length === 0) tsStart = i;
    ts.push(l);
  });
  flushTs();
  return out;
}
