// A run folder's checkpoint: finished jobs' table rows appended as JSON lines, so an interrupted or
// crashed sweep resumes without redoing them. The spec is stored next to them; a different spec in
// the same folder is refused rather than mixed in.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SpecError } from '../errors';

export type Row = Record<string, unknown>;

export class RunCheckpoint {
  private readonly done = new Map<string, Row[]>();
  readonly file: string;

  private constructor(readonly dir: string) {
    this.file = path.join(dir, 'rows.jsonl');
  }

  /** Opens (or creates) `dir`; `spec` must equal the one stored there, if any. */
  static open(dir: string, spec: unknown): RunCheckpoint {
    fs.mkdirSync(dir, { recursive: true });
    const specFile = path.join(dir, 'spec.json');
    const text = JSON.stringify(spec, null, 2);
    if (fs.existsSync(specFile)) {
      const prev = fs.readFileSync(specFile, 'utf8');
      if (prev.trim() !== text.trim())
        throw new SpecError(`${dir} holds the checkpoint of a different spec (${specFile}); use another --out folder or delete it to start over`);
    } else fs.writeFileSync(specFile, text + '\n');
    const cp = new RunCheckpoint(dir);
    if (fs.existsSync(cp.file)) {
      for (const line of fs.readFileSync(cp.file, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        try {
          const { key, rows } = JSON.parse(line) as { key: string; rows: Row[] };
          cp.done.set(key, rows);
        } catch {
          // A line cut short by a crash: that job simply runs again.
        }
      }
    }
    return cp;
  }

  has(key: string): boolean {
    return this.done.has(key);
  }

  rows(key: string): Row[] | undefined {
    return this.done.get(key);
  }

  get size(): number {
    return this.done.size;
  }

  /** Appends one finished job (one line, written at once so a crash leaves at most that line torn). */
  add(key: string, rows: Row[]): void {
    this.done.set(key, rows);
    fs.appendFileSync(this.file, JSON.stringify({ key, rows }) + '\n');
  }
}
