// A HuggingFace model folder (config.json + safetensors, single file or sharded) opened as one set of
// tensors under ONE canonical naming: the transformers-4.45 layout the fixtures use. Checkpoints saved by
// transformers ≥ 4.52 move the LLaVA / Qwen2-VL submodules under `model.`; their names are mapped back
// here so model code never sees two layouts. Pickle checkpoints are refused: unpickling runs code.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointError } from '../errors';
import type { FloatDtype } from './dtype';
import { SafetensorsFile, type CompactTensor, type Dtype, type ReadOptions, type TensorEntry } from './safetensors';

/**
 * How a family's tensor names are laid out, so newer layouts map back to the canonical one. Which model_type
 * uses which layout is the family's to say (src/models/load.ts FAMILIES, `nameLayout`); the checkpoint layer
 * keeps only the renaming rules (issue 13: a second family list here disagreed with the loaders).
 */
export type ModelFamily = 'llava' | 'qwen2_vl' | 'mllama' | 'text' | 'other';
export type NameLayout = ModelFamily;
/** Prefix rewrites from the newer (transformers ≥ 4.52) layout to the canonical one, first match wins. */
const NEWER_TO_CANONICAL: Record<ModelFamily, readonly (readonly [string, string])[]> = {
  llava: [
    ['model.language_model.', 'language_model.model.'],
    ['model.vision_tower.', 'vision_tower.'],
    ['model.multi_modal_projector.', 'multi_modal_projector.'],
    ['lm_head.', 'language_model.lm_head.'],
  ],
  qwen2_vl: [
    ['model.language_model.', 'model.'],
    ['model.visual.', 'visual.'],
  ],
  mllama: [
    ['model.language_model.', 'language_model.model.'],
    ['model.vision_model.', 'vision_model.'],
    ['model.multi_modal_projector.', 'multi_modal_projector.'],
    ['lm_head.', 'language_model.lm_head.'],
  ],
  text: [],
  other: [],
};

/** Maps a stored tensor name to the canonical layout for `family`; names already canonical pass through. */
export function canonicalName(name: string, family: ModelFamily): string {
  if (family === 'llava' && name === 'model.image_newline') return 'image_newline';
  for (const [from, to] of NEWER_TO_CANONICAL[family]) {
    if (name.startsWith(from)) return to + name.slice(from.length);
  }
  return name;
}

/** A tensor of a checkpoint: where it is stored, under which canonical name. */
export interface CheckpointEntry extends TensorEntry {
  /** The name model code uses (TensorEntry.name is the name in the file). */
  readonly canonicalName: string;
}

export interface OpenCheckpointOptions {
  /** The name layout of the checkpoint's model_type (default 'other': names are used as stored). */
  layout?: NameLayout | ((modelType: string) => NameLayout);
  /**
   * Weights file inside the folder, instead of `model.safetensors` / `model.safetensors.index.json`:
   * another safetensors file (e.g. `model-bf16.safetensors`) or a shard index (`*.index.json`).
   */
  file?: string;
}

const PICKLE_RE = /(\.bin|\.pt|\.pth|\.ckpt|\.pkl|\.pickle)$/i;

function pickleRefusal(dir: string, files: readonly string[]): CheckpointError {
  const shown = files.slice(0, 5).join(', ') + (files.length > 5 ? `, … (${files.length} files)` : '');
  return new CheckpointError(
    `${dir}: has only PyTorch pickle weights (${shown}). Pickle files execute arbitrary code when loaded, ` +
      `so hopscope never loads them. Convert once to safetensors in a Python environment you trust: ` +
      `\`AutoModel...from_pretrained(dir).save_pretrained(out_dir, safe_serialization=True)\`, or ` +
      `\`safetensors.torch.save_file(torch.load(path, weights_only=True), "model.safetensors")\`; ` +
      `then copy config.json next to it.`,
  );
}

function readJson(file: string, what: string, whyNeeded = ''): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(
      code === 'ENOENT' ? `${file}: ${what} is missing${whyNeeded}` : `${file}: cannot read ${what} (${(e as Error).message})`,
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new CheckpointError(`${file}: ${what} is not valid JSON (${(e as Error).message})`);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A shard file name from an index: a plain file inside the folder, never a path out of it. */
function shardPath(dir: string, indexFile: string, shard: string): string {
  if (shard === '' || path.isAbsolute(shard) || shard.split(/[\\/]/).includes('..')) {
    throw new CheckpointError(`${indexFile}: shard name '${shard}' must be a file inside ${dir}`);
  }
  return path.join(dir, shard);
}

/** An open HuggingFace checkpoint folder. */
export class Checkpoint {
  private closed = false;

  /** @internal use openCheckpoint */
  constructor(
    readonly dir: string,
    /** Parsed config.json. */
    readonly config: Readonly<Record<string, unknown>>,
    readonly family: ModelFamily,
    /** The safetensors files in use (one, or the shards). */
    readonly files: readonly SafetensorsFile[],
    private readonly byName: ReadonlyMap<string, { file: SafetensorsFile; entry: CheckpointEntry }>,
  ) {}

  /** Canonical tensor names, in file order. */
  names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  entry(name: string): CheckpointEntry {
    return this.lookup(name).entry;
  }

  /** Float32 data (see SafetensorsFile.readF32); `transpose2d` turns HF `[out, in]` into `[in, out]`. */
  readF32(name: string, opts?: ReadOptions): Float32Array {
    const { file, entry } = this.lookup(name);
    return file.readF32(entry.name, opts);
  }

  /** Data in stored precision (F16/BF16 as bit patterns), for streaming big models layer by layer. */
  readCompact(name: string, opts?: ReadOptions): CompactTensor {
    const { file, entry } = this.lookup(name);
    return file.readCompact(entry.name, opts);
  }

  readBytes(name: string): Uint8Array {
    const { file, entry } = this.lookup(name);
    return file.readBytes(entry.name);
  }

  /** Bytes of tensor data, all or of one dtype: to check memory needs before loading. */
  totalBytes(dtype?: Dtype | FloatDtype): number {
    let n = 0;
    for (const { entry } of this.byName.values()) if (dtype === undefined || entry.dtype === dtype) n += entry.byteLength;
    return n;
  }

  /** Number of elements over all tensors. */
  numel(): number {
    let n = 0;
    for (const { entry } of this.byName.values()) n += entry.shape.reduce((a, d) => a * d, 1);
    return n;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const f of this.files) f.close();
  }

  private lookup(name: string): { file: SafetensorsFile; entry: CheckpointEntry } {
    const hit = this.byName.get(name);
    if (hit !== undefined) return hit;
    const hint = suggest(name, this.byName.keys());
    throw new CheckpointError(
      `missing tensor '${name}' in checkpoint ${this.dir} (${this.byName.size} tensors` +
        (hint.length > 0 ? `; similar: ${hint.join(', ')}` : '') +
        ')',
    );
  }
}

/** Up to 3 names sharing the longest dotted suffix with `name`: usually the same weight under another prefix. */
function suggest(name: string, names: Iterable<string>): string[] {
  const parts = name.split('.');
  let best: string[] = [];
  let bestLen = 0;
  for (const n of names) {
    const q = n.split('.');
    let k = 0;
    while (k < parts.length && k < q.length && parts[parts.length - 1 - k] === q[q.length - 1 - k]) k++;
    if (k === 0 || k < bestLen) continue;
    if (k > bestLen) {
      bestLen = k;
      best = [];
    }
    if (best.length < 3) best.push(n);
  }
  // One shared segment ("weight") says nothing.
  return bestLen >= 2 ? best : [];
}

/**
 * Opens a HuggingFace model folder: config.json plus `model.safetensors`, a sharded
 * `model.safetensors.index.json`, or `opts.file`. Validates every header (and the index against the
 * shards) up front, and exposes the tensors under canonical names. Refuses pickle checkpoints.
 */
export function openCheckpoint(dir: string, opts: OpenCheckpointOptions = {}): Checkpoint {
  let listing: string[];
  try {
    if (!fs.statSync(dir).isDirectory()) throw new CheckpointError(`${dir}: is a file, not a checkpoint folder`);
    listing = fs.readdirSync(dir).sort();
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`${dir}: checkpoint folder does not exist or cannot be read (${(e as Error).message})`);
  }

  const config = readJson(
    path.join(dir, 'config.json'),
    'config.json',
    ': hopscope needs the HuggingFace model config next to the weights (save it with the model, or copy it from the hub)',
  );
  if (!isPlainObject(config)) throw new CheckpointError(`${path.join(dir, 'config.json')}: config.json is not a JSON object`);
  const family: NameLayout =
    typeof opts.layout === 'function' ? opts.layout(String(config.model_type ?? '')) : (opts.layout ?? 'other');

  const weightsFile = chooseWeights(dir, listing, opts);
  const files: SafetensorsFile[] = [];
  try {
    // storedName → file that holds it
    const placement = new Map<string, SafetensorsFile>();
    if (weightsFile.endsWith('.index.json')) {
      const indexPath = path.join(dir, weightsFile);
      const index = readJson(indexPath, 'shard index');
      const weightMap = isPlainObject(index) ? index.weight_map : undefined;
      if (!isPlainObject(weightMap)) throw new CheckpointError(`${indexPath}: has no "weight_map" object {tensor: shard file}`);
      const byShard = new Map<string, string[]>();
      for (const [tensor, shard] of Object.entries(weightMap)) {
        if (typeof shard !== 'string') throw new CheckpointError(`${indexPath}: weight_map['${tensor}'] is not a file name`);
        const list = byShard.get(shard) ?? [];
        list.push(tensor);
        byShard.set(shard, list);
      }
      for (const [shard, tensors] of byShard) {
        const p = shardPath(dir, indexPath, shard);
        if (!fs.existsSync(p)) {
          throw new CheckpointError(
            `${indexPath}: shard '${shard}' (listed for ${tensors.length} tensors, e.g. '${tensors[0]}') is missing from ${dir}`,
          );
        }
        const f = SafetensorsFile.open(p);
        files.push(f);
        const absent = tensors.filter((t) => !f.has(t));
        if (absent.length > 0) {
          throw new CheckpointError(
            `${indexPath}: ${absent.length} tensor(s) mapped to shard '${shard}' are not in it: ` +
              `${absent.slice(0, 5).join(', ')}${absent.length > 5 ? ', …' : ''}`,
          );
        }
        // Tensors a shard holds but the index does not list are ignored: the index is the contract.
        for (const t of tensors) placement.set(t, f);
      }
    } else {
      const f = SafetensorsFile.open(path.join(dir, weightsFile));
      files.push(f);
      for (const t of f.entries.keys()) placement.set(t, f);
    }

    const byName = new Map<string, { file: SafetensorsFile; entry: CheckpointEntry }>();
    for (const f of files) {
      for (const [stored, e] of f.entries) {
        if (placement.get(stored) !== f) continue;
        const canon = canonicalName(stored, family);
        const prev = byName.get(canon);
        if (prev !== undefined) {
          throw new CheckpointError(
            `${dir}: tensors '${prev.entry.name}' and '${stored}' both map to '${canon}' (mixed old/new name layouts?)`,
          );
        }
        byName.set(canon, { file: f, entry: { ...e, canonicalName: canon } });
      }
    }
    return new Checkpoint(dir, config, family, files, byName);
  } catch (e) {
    for (const f of files) f.close();
    throw e;
  }
}

/** Picks the weights file name inside `dir`, or explains what is there instead. */
function chooseWeights(dir: string, listing: readonly string[], opts: OpenCheckpointOptions): string {
  const safetensors = listing.filter((f) => f.endsWith('.safetensors') || f.endsWith('.safetensors.index.json'));
  if (opts.file !== undefined) {
    if (PICKLE_RE.test(opts.file)) throw pickleRefusal(dir, [opts.file]);
    if (!fs.existsSync(path.join(dir, opts.file))) {
      throw new CheckpointError(
        `${dir}: weights file '${opts.file}' not found (safetensors files here: ${safetensors.join(', ') || 'none'})`,
      );
    }
    return opts.file;
  }
  if (listing.includes('model.safetensors')) return 'model.safetensors';
  if (listing.includes('model.safetensors.index.json')) return 'model.safetensors.index.json';
  if (safetensors.length > 0) {
    throw new CheckpointError(
      `${dir}: no model.safetensors or model.safetensors.index.json; pick one of ${safetensors.join(', ')} ` +
        `with the \`file\` option`,
    );
  }
  const pickles = listing.filter((f) => PICKLE_RE.test(f));
  if (pickles.length > 0) throw pickleRefusal(dir, pickles);
  throw new CheckpointError(`${dir}: no weights found (expected model.safetensors or model.safetensors.index.json)`);
}

/** What a model expects of one tensor: canonical name and shape as stored (HF `[out, in]` for Linear). */
export interface ExpectedTensor {
  name: string;
  shape: readonly number[];
}

export interface RequireOptions {
  /** Checkpoint tensors the model deliberately does not use (e.g. `/\.rotary_emb\.inv_freq$/`). */
  ignoreUnexpected?: readonly (string | RegExp)[];
}

/**
 * Strict loading: checks that the checkpoint holds exactly the expected tensors with the expected shapes,
 * and reports every missing, unexpected and wrong-shape tensor together in one CheckpointError.
 */
export function requireTensors(ckpt: Checkpoint, expected: readonly ExpectedTensor[], opts: RequireOptions = {}): void {
  const ignore = opts.ignoreUnexpected ?? [];
  const want = new Set<string>();
  const missing: string[] = [];
  const wrongShape: string[] = [];
  for (const { name, shape } of expected) {
    want.add(name);
    if (!ckpt.has(name)) {
      missing.push(name);
      continue;
    }
    const got = ckpt.entry(name).shape;
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      wrongShape.push(`${name}: file [${got.join(', ')}], model expects [${shape.join(', ')}]`);
    }
  }
  const unexpected = ckpt
    .names()
    .filter((n) => !want.has(n) && !ignore.some((p) => (typeof p === 'string' ? p === n : p.test(n))));
  if (missing.length + unexpected.length + wrongShape.length === 0) return;
  const section = (title: string, items: string[]): string =>
    items.length === 0
      ? ''
      : `\n  ${items.length} ${title}:\n    ${items.slice(0, 20).join('\n    ')}` +
        (items.length > 20 ? `\n    … and ${items.length - 20} more` : '');
  throw new CheckpointError(
    `checkpoint ${ckpt.dir} does not match the model (family ${ckpt.family}, model_type ` +
      `${String(ckpt.config.model_type)}):` +
      section('missing', missing) +
      section('unexpected', unexpected) +
      section('wrong shape', wrongShape),
  );
}
