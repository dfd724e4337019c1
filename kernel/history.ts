// This session's input history for `history_request` (JupyterLab's console and ↑ in a cell, %history-style
// tools). In memory only: ipykernel keeps a SQLite database across sessions; we answer for the running session,
// numbered 1, which is what the frontends ask for (`session: 0` = the current one).
import type { Content } from './messages';

export const SESSION = 1;

interface Entry {
  line: number;
  input: string;
  output: string | null;
}

type Row = [number, number, string] | [number, number, [string, string | null]];

export class History {
  private readonly entries: Entry[] = [];

  /** Records an input with history on (execution_count > 0). */
  add(line: number, input: string): void {
    this.entries.push({ line, input, output: null });
  }

  /** The text/plain result of the line, for `output: true` requests. */
  setOutput(line: number, text: string): void {
    const e = this.entries.find((x) => x.line === line);
    if (e) e.output = text;
  }

  /** The `history` list of a history_reply. */
  query(c: Content): Row[] {
    const withOutput = c.output === true;
    const row = (e: Entry): Row => (withOutput ? [SESSION, e.line, [e.input, e.output]] : [SESSION, e.line, e.input]);
    const n = typeof c.n === 'number' && c.n > 0 ? c.n : null;
    switch (c.hist_access_type) {
      case 'range': {
        // Only this session exists here; other sessions (negative, or numbers other than ours) are empty.
        const session = Number(c.session ?? 0);
        if (session !== 0 && session !== SESSION) return [];
        const start = Number(c.start ?? 0);
        const stop = c.stop == null ? Infinity : Number(c.stop);
        return this.entries.filter((e) => e.line >= start && e.line < stop).map(row);
      }
      case 'search': {
        const re = globToRegExp(String(c.pattern ?? '*'));
        let hits = this.entries.filter((e) => re.test(e.input));
        if (c.unique === true) {
          const seen = new Set<string>();
          hits = hits.reverse().filter((e) => !seen.has(e.input) && seen.add(e.input)).reverse();
        }
        return (n ? hits.slice(-n) : hits).map(row);
      }
      case 'tail':
      default:
        return (n ? this.entries.slice(-n) : this.entries.slice(-1000)).map(row);
    }
  }
}

/** IPython's search patterns are shell globs (`*` any run, `?` one character), matched on the whole input. */
function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[\\s\\S]*').replace(/\?/g, '[\\s\\S]');
  return new RegExp(`^${body}$`);
}
