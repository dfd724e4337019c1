// tslab rewrites a reference to an earlier cell's variable `x` to `exports.x`, but it misses shorthand
// properties: after `const model = ...` in one cell, `{ model }` in a later cell throws "model is not defined"
// (so `hs.runExperiment(spec, { model })` fails). Spelling every shorthand property out (`{ model: model }`,
// `{ a = 1 } = o` → `{ a: a = 1 } = o`) means the same in every position and lets tslab see the identifier.
import type * as TS from 'typescript';

let ts: typeof TS | null = null;

export function expandShorthandProperties(code: string): string {
  if (!code.includes('{')) return code;
  ts ??= require('@tslab/typescript-for-tslab') as typeof TS;
  const t = ts;
  const at: { pos: number; name: string }[] = [];
  const visit = (node: TS.Node): void => {
    if (t.isShorthandPropertyAssignment(node)) at.push({ pos: node.name.end, name: code.slice(node.name.getStart(), node.name.end) });
    t.forEachChild(node, visit);
  };
  visit(t.createSourceFile('cell.ts', code, t.ScriptTarget.Latest, true, t.ScriptKind.TS));
  if (at.length === 0) return code;
  let out = '';
  let from = 0;
  for (const { pos, name } of at.sort((a, b) => a.pos - b.pos)) {
    out += `${code.slice(from, pos)}: ${name}`;
    from = pos;
  }
  return out + code.slice(from);
}
