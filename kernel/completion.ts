// Completion and inspection the TypeScript service cannot give: magic names (`%rec<Tab>`), a magic's options
// and option values (`%recallgap --<Tab>`, `--donors <Tab>`), Shift-Tab help on a magic, and hook-point names
// inside string literals (`'lm.blocks.<Tab>`) from the loaded model. Everything else goes to tslab, with the
// cell's magic lines blanked so TypeScript sees valid code at unchanged offsets.
import type { Option } from 'commander';
import { type Model, hookPointsOf } from './library';
import type { Content } from './messages';
import type { Magic, MagicRegistry } from './magics/registry';
import { TEACHING_MODELS } from '../src/data/teaching-models';

const MAGIC_LINE = /^(\s*)(%%?)([\w-]*)/;

interface Line {
  start: number;
  /** Text of the line up to the cursor. */
  before: string;
  /** Whole line. */
  text: string;
  /** 0-based line number in the cell. */
  index: number;
}

function lineAt(code: string, pos: number): Line {
  const start = code.lastIndexOf('\n', pos - 1) + 1;
  const nl = code.indexOf('\n', pos);
  const text = code.slice(start, nl < 0 ? code.length : nl);
  return { start, before: code.slice(start, pos), text, index: code.slice(0, start).split('\n').length - 1 };
}

/** Whether the line is a magic call: `%name` anywhere, `%%name` only on the cell's first non-blank line. */
function magicOnLine(code: string, line: Line): RegExpExecArray | null {
  const m = MAGIC_LINE.exec(line.text);
  if (!m) return null;
  if (m[2] === '%%' && code.slice(0, line.start).trim() !== '') return null;
  return m;
}

function reply(start: number, end: number, items: { text: string; type: string; signature?: string }[]): Content {
  return {
    status: 'ok',
    matches: items.map((i) => i.text),
    cursor_start: start,
    cursor_end: end,
    // JupyterLab shows these types next to the matches.
    metadata: { _jupyter_types_experimental: items.map((i) => ({ start, end, text: i.text, type: i.type, signature: i.signature ?? '' })) },
  };
}

/** registry.command adds -h/--help outside `options`. */
const HELP = { long: '--help', short: '-h', flags: '-h, --help', description: 'show this help' } as Option;

function options(registry: MagicRegistry, m: Magic): readonly Option[] {
  return registry.command(m, { text: '' }).options;
}

/** A complete_reply for the cursor, or null when tslab should answer. */
export function completeSpecial(code: string, pos: number, registry: MagicRegistry, model: Model | null): Content | null {
  const line = lineAt(code, pos);
  const magic = magicOnLine(code, line);
  // `%%` below the first line is a usage error (cell-split.ts): nothing to offer, and not TypeScript either.
  if (!magic && /^\s*%/.test(line.text)) return reply(pos, pos, []);
  if (magic) {
    const nameEnd = magic[0].length;
    if (line.before.length <= nameEnd) {
      // Completing the magic's name.
      const typed = line.before.slice(magic[1].length);
      const start = line.start + magic[1].length;
      const cellAllowed = code.slice(0, line.start).trim() === '';
      const names = registry
        .all()
        .filter((x) => (x.cell ? cellAllowed : true))
        .map((x) => ({ text: `${x.cell ? '%%' : '%'}${x.name}`, type: x.cell ? 'cell magic' : 'magic', signature: x.summary }))
        .filter((x) => x.text.startsWith(typed) && (typed.startsWith('%%') ? x.text.startsWith('%%') : true))
        .sort((a, b) => a.text.localeCompare(b.text));
      return reply(start, pos, names);
    }
    const m = registry.get(magic[3], magic[2] === '%%');
    if (!m) return reply(pos, pos, []);
    const words = line.before.slice(nameEnd).split(/\s+/);
    const word = words[words.length - 1];
    const start = pos - word.length;
    const opts = options(registry, m);
    if (word.startsWith('-')) {
      const items = [...opts, HELP]
        .flatMap((o) => [o.long, o.short].filter((f): f is string => !!f).map((f) => ({ text: f, type: 'option', signature: `${o.flags}: ${o.description}` })))
        .filter((o) => o.text.startsWith(word) && (word.startsWith('--') ? o.text.startsWith('--') : true));
      return reply(start, pos, items);
    }
    // An option's value: its choices (commander's argChoices).
    const prev = words[words.length - 2];
    const opt = prev?.startsWith('-') ? opts.find((o) => o.long === prev || o.short === prev) : undefined;
    const choices = opt?.argChoices ?? (m.name === 'load' && words.length === 2 ? Object.keys(TEACHING_MODELS) : []);
    return reply(start, pos, choices.filter((c) => c.startsWith(word)).map((c) => ({ text: c, type: 'value' })));
  }
  const hook = hookPrefix(line.before);
  if (hook !== null && model) {
    const names = hookPointsOf(model).map((p) => p.name);
    const items = names.filter((n) => n.startsWith(hook)).map((n) => ({ text: n, type: 'hook point' }));
    if (items.length) return reply(pos - hook.length, pos, items);
  }
  return null;
}

/** The text of an open string literal that ends at the cursor and looks like a dotted name, else null. */
function hookPrefix(before: string): string | null {
  const m = /(['"`])([\w.]*)$/.exec(before);
  if (!m) return null;
  // The quote opens a string only if the quotes of that kind before it are balanced.
  const earlier = before.slice(0, m.index);
  const count = earlier.split(m[1]).length - 1;
  return count % 2 === 0 ? m[2] : null;
}

/** An inspect_reply for a magic line (its --help), or null when tslab should answer. */
export function inspectSpecial(code: string, pos: number, registry: MagicRegistry): Content | null {
  const line = lineAt(code, pos);
  const magic = magicOnLine(code, line);
  if (!magic) return null;
  const m = registry.get(magic[3], magic[2] === '%%') ?? registry.find(magic[3]);
  if (!m) return { status: 'ok', found: false, data: {}, metadata: {} };
  return { status: 'ok', found: true, data: { 'text/plain': registry.help(m) }, metadata: {} };
}

/**
 * The cell with line-magic lines blanked (same length), so tslab's TypeScript service sees the code around them;
 * null for a `%%` cell, whose body is the magic's, not TypeScript.
 */
export function maskMagics(code: string): string | null {
  if (/^\s*%%/.test(code)) return null;
  return code
    .split('\n')
    .map((l) => (/^\s*%/.test(l) ? ' '.repeat(l.length) : l))
    .join('\n');
}
