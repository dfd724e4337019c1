// Content hashes of a model folder and a data folder. Jobs name the weights and the data they were cut
// from by these hashes (not by paths, which differ from machine to machine), so a worker holding other
// weights or other data never runs them: the queue name carries both hashes and the worker checks again.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';

/** Every regular file under `dir` (dot files and folders skipped), relative paths, sorted. */
function filesUnder(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...filesUnder(dir, r));
    else if (e.isFile()) out.push(r);
  }
  return out.sort();
}

// Hashing tens of GB of weights takes a while: a process hashes a folder once per (size, mtime) listing.
const memo = new Map<string, string>();

/**
 * sha256 over the folder's file names and contents (a single file: its contents). Renaming the folder or
 * moving it to another machine keeps the hash; changing any byte of weights, config, tokenizer or data changes it.
 */
export function contentHash(target: string): string {
  const root = path.resolve(target);
  let st: fs.Stats;
  try {
    st = fs.statSync(root);
  } catch {
    throw new InputError(`cannot hash ${root}: no such file or folder; pass an existing model or data folder`);
  }
  const files = st.isDirectory() ? filesUnder(root) : [''];
  const listing = files.map((f) => {
    const s = fs.statSync(path.join(root, f));
    return `${f}\0${s.size}\0${s.mtimeMs}`;
  });
  const memoKey = `${root}\n${listing.join('\n')}`;
  const known = memo.get(memoKey);
  if (known) return known;
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  for (const f of files) {
    const file = path.join(root, f);
    h.update(`${f}\0${fs.statSync(file).size}\0`);
    const fd = fs.openSync(file, 'r');
    try {
      for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
    } finally {
      fs.closeSync(fd);
    }
  }
  const hex = h.digest('hex');
  memo.set(memoKey, hex);
  return hex;
}

/** sha256 of a JSON value with sorted keys (the same spec hashes the same on every machine). */
export function jsonHash(value: unknown): string {
  const canon = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canon) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])])) : v;
  return createHash('sha256').update(JSON.stringify(canon(value))).digest('hex');
}
