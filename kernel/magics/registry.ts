// Magics: each a thin layer over a library call a cell could make. Arguments are parsed with commander
// (exitOverride, output captured, never process.exit); a bad argument becomes an `error` reply naming it.
import { Command, CommanderError } from 'commander';
import type { WidgetsApi } from '../cell-api';
import type { Library, Model } from '../library';
import { parseIndexRanges } from '../../src/experiments/spec-options';

/** Bad magic usage: unknown magic, option or value. The kernel replies with an error and keeps its state. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Kernel state the magics share: the current model and loaded datasets. */
export interface MagicSession {
  model: Model | null;
  modelSource: string | null;
  /** The variable the last %load bound the model to (`--as NAME`), for figures that name models; absent: none. */
  modelName?: string | null;
  data: unknown;
  datasets: Map<string, unknown>;
}

/** What a magic may do: everything goes through the kernel, so tests can drive magics with a stand-in. */
export interface MagicContext {
  /** The library; throws LibraryMissingError naming `what` while src/index.ts does not exist. */
  lib(what: string): Library;
  /** Aborted on interrupt. */
  signal: AbortSignal;
  /** Rejects when the kernel stops waiting (second interrupt or grace period over); race long awaits with it. */
  hardStop: Promise<never>;
  session: MagicSession;
  widgets: WidgetsApi;
  stdout(text: string): void;
  /** display_data of a value (same bundle rules as a cell's last expression). */
  display(value: unknown): void;
  /**
   * Binds `_` (and `as`, when given) in the user's namespace. `type`: the value's type as a cell-API type
   * expression (kernel/cell-api.d.ts: `Model`, `ResultOf<"probe">`), so cells that read it compile and complete;
   * `any` when omitted or while the library's declarations are not generated.
   */
  keep(value: unknown, as?: string, type?: string): Promise<void>;
  /** A user variable by name (cell locals, then globals); undefined when absent. */
  lookup(name: string): unknown;
  /**
   * Runs `fn` after the current executions, with iopub output going to the request being handled now;
   * `signal` aborts on interrupt, as for a cell.
   */
  background(fn: (signal: AbortSignal) => Promise<void>): void;
  registry: MagicRegistry;
  /**
   * Runs code as a cell would (TypeScript and line magics; declarations persist) and returns the display bundle
   * of its last value, or null; throws CellFailure with the cell's error.
   */
  run(code: string): Promise<Record<string, unknown> | null>;
}

/** A cell run by a magic (%time, %timeit) failed: its error content, reported as the cell's own error. */
export class CellFailure extends Error {
  constructor(readonly content: { ename: string; evalue: string; traceback: string[] }) {
    super(content.evalue);
    this.name = content.ename;
  }
}

export interface MagicOutput {
  /** The result; shown as the execute_result when the magic is the cell's last segment and `show` is set. */
  value?: unknown;
  show?: boolean;
  /** Shown instead of the value's own bundle (a summary rather than util.inspect of a model). */
  bundle?: Record<string, unknown>;
  /** What `--save FILE` writes when it is not the value's own view (a `--compare` figure of two models). */
  figure?: unknown;
}

export interface Magic {
  name: string;
  /** Cell magics (`%%name`) get the rest of the cell as `body`. */
  cell?: boolean;
  summary: string;
  /** Adds arguments and options to a fresh, pre-configured command (fresh per call: commander keeps values). */
  define(cmd: Command): Command;
  run(parsed: { opts: Record<string, unknown>; args: unknown[] }, ctx: MagicContext, body: string | undefined): Promise<MagicOutput>;
  /**
   * For magics whose argument is code (`%time expr`): parses the raw line instead of commander, which would
   * split it into shell words. `define` still gives the help text and the option completions.
   */
  parseRaw?(argLine: string): { opts: Record<string, unknown>; args: unknown[] };
  /** The cell type (a kernel/cell-api.d.ts type expression) of what it binds with `--as`; experiment magics: `resultType`. */
  binds?: string;
}

/** Shell-like words: whitespace separates, quotes group, backslash escapes. */
export function tokenize(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: '"' | "'" | null = null;
  let has = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      has = true;
    } else if (ch === '\\' && i + 1 < line.length) {
      cur += line[++i];
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
    }
  }
  if (quote) throw new UsageError(`unclosed ${quote} quote in: ${line}`);
  if (has || cur) out.push(cur);
  return out;
}

export type Parsed = { kind: 'run'; opts: Record<string, unknown>; args: unknown[] } | { kind: 'help'; text: string };

export class MagicRegistry {
  private readonly magics = new Map<string, Magic>();

  add(...ms: Magic[]): this {
    for (const m of ms) this.magics.set(`${m.cell ? '%%' : '%'}${m.name}`, m);
    return this;
  }

  get(name: string, cell: boolean): Magic | undefined {
    return this.magics.get(`${cell ? '%%' : '%'}${name}`);
  }

  /** Finds a magic named with or without its `%`/`%%`. */
  find(name: string): Magic | undefined {
    const bare = name.replace(/^%+/, '');
    return this.magics.get(name) ?? this.magics.get(`%${bare}`) ?? this.magics.get(`%%${bare}`);
  }

  all(): Magic[] {
    return [...this.magics.values()];
  }

  command(m: Magic, out: { text: string }): Command {
    const label = `${m.cell ? '%%' : '%'}${m.name}`;
    const cmd = new Command(label)
      .description(m.summary)
      .exitOverride()
      .allowExcessArguments(false)
      .helpOption('-h, --help', 'show this help')
      .configureOutput({ writeOut: (s) => (out.text += s), writeErr: (s) => (out.text += s), outputError: () => {} });
    return m.define(cmd);
  }

  help(m: Magic): string {
    return this.command(m, { text: '' }).helpInformation();
  }

  /** Parses a magic's argument line. Throws UsageError naming the bad argument. */
  parse(m: Magic, argLine: string): Parsed {
    const out = { text: '' };
    const cmd = this.command(m, out);
    const label = `${m.cell ? '%%' : '%'}${m.name}`;
    if (m.parseRaw) {
      if (/^\s*(-h|--help)\s*$/.test(argLine)) return { kind: 'help', text: cmd.helpInformation() };
      try {
        return { kind: 'run', ...m.parseRaw(argLine) };
      } catch (e) {
        throw e instanceof UsageError ? new UsageError(`${label}: ${e.message} (see ${label} --help)`) : e;
      }
    }
    try {
      cmd.parse(tokenize(argLine), { from: 'user' });
    } catch (e) {
      if (e instanceof CommanderError) {
        if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help') return { kind: 'help', text: out.text || cmd.helpInformation() };
        throw new UsageError(`${label}: ${e.message.replace(/^error: /, '')} (see ${label} --help)`);
      }
      if (e instanceof UsageError) throw new UsageError(`${label}: ${e.message}`);
      throw e;
    }
    return { kind: 'run', opts: cmd.opts(), args: cmd.processedArgs };
  }
}

/** An option value parser for commander that throws UsageError naming the option. */
export function parser<T>(option: string, what: string, fn: (v: string) => T | undefined): (v: string) => T {
  return (v: string) => {
    const r = fn(v);
    if (r === undefined) throw new UsageError(`${option} ${JSON.stringify(v)} is not ${what}`);
    return r;
  };
}

export const parseIntArg = (option: string) =>
  parser(option, 'a non-negative integer', (v) => (/^\d+$/.test(v) ? Number(v) : undefined));
export const parseNumberArg = (option: string) =>
  parser(option, 'a number', (v) => (v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined));
export const parseListArg = (option: string) =>
  parser(option, 'a comma-separated list', (v) => {
    const xs = v.split(',').map((s) => s.trim()).filter(Boolean);
    return xs.length ? xs : undefined;
  });

/** `5-29`, `0,3,8-10` → sorted unique layer numbers (the library's one parser for index ranges). */
export const parseLayers = parseIndexRanges;

export const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
export const parseNameArg = (option: string) =>
  parser(option, 'a variable name', (v) => (IDENTIFIER.test(v) && !RESERVED.has(v) ? v : undefined));

const RESERVED = new Set(
  'break case catch class const continue debugger default delete do else enum export extends false finally for function if import in instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package private protected public await'.split(
    ' ',
  ),
);
