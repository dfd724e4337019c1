import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CheckpointError } from '../../src/errors';
import { canonicalName, openCheckpoint, requireTensors, type Checkpoint } from '../../src/io/checkpoint';
// The name layout of each model_type is its family's (src/models/load.ts), as loadModelFromDir passes it.
import { nameLayoutOf } from '../../src/models/load';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../../src/io/safetensors';

import { FIXTURES } from '../fixtures/paths';
const FOLDERS = fs
  .readdirSync(FIXTURES)
  .filter((d) => fs.existsSync(path.join(FIXTURES, d, 'tensor_names.txt')))
  .sort();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-checkpoint-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function tensorNames(folder: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const line of fs.readFileSync(path.join(FIXTURES, folder, 'tensor_names.txt'), 'utf8').split('\n')) {
    const m = /^(\S+) \[(.*)\]$/.exec(line.trim());
    if (m) out.set(m[1], m[2].trim() === '' ? [] : m[2].split(',').map((s) => Number(s.trim())));
  }
  return out;
}

function assertCheckpointError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

function withCheckpoint(dir: string, fn: (c: Checkpoint) => void, file?: string): void {
  const c = openCheckpoint(dir, file === undefined ? { layout: nameLayoutOf } : { file, layout: nameLayoutOf });
  try {
    fn(c);
  } finally {
    c.close();
  }
}

/** Every tensor of a fixture file in stored precision, keyed by stored name. */
function loadAll(folder: string, file = 'model.safetensors'): Record<string, TensorToWrite> {
  const f = SafetensorsFile.open(path.join(FIXTURES, folder, file));
  try {
    const out: Record<string, TensorToWrite> = {};
    for (const name of f.entries.keys()) out[name] = f.readCompact(name);
    return out;
  } finally {
    f.close();
  }
}

/** A fresh folder in tmp with the fixture's config.json. */
function folderWithConfig(name: string, fixture: string): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(FIXTURES, fixture, 'config.json'), path.join(dir, 'config.json'));
  return dir;
}

function assertSameTensors(a: Checkpoint, b: Checkpoint): void {
  assert.deepEqual(a.names().sort(), b.names().sort());
  for (const name of a.names()) {
    assert.deepEqual(a.entry(name).shape, b.entry(name).shape, name);
    assert.deepEqual(a.readF32(name), b.readF32(name), name);
  }
}

test('every fixture folder opens (F32 and BF16) with the canonical names and shapes of tensor_names.txt', () => {
  const families: Record<string, string> = {};
  for (const folder of FOLDERS) {
    const want = tensorNames(folder);
    for (const file of [undefined, 'model-bf16.safetensors']) {
      withCheckpoint(path.join(FIXTURES, folder), (c) => {
        families[folder] = c.family;
        assert.equal(typeof c.config.model_type, 'string');
        assert.deepEqual(c.names().sort(), [...want.keys()].sort(), folder);
        for (const [name, shape] of want) {
          assert.deepEqual(c.entry(name).shape, shape);
          assert.equal(c.entry(name).canonicalName, name);
        }
        const n = [...want.values()].reduce((s, sh) => s + sh.reduce((a, d) => a * d, 1), 0);
        assert.equal(c.numel(), n);
        assert.equal(c.totalBytes(), n * (file === undefined ? 4 : 2));
        assert.equal(c.totalBytes(file === undefined ? 'F32' : 'BF16'), c.totalBytes());
        assert.equal(c.totalBytes('F16'), 0);
      }, file);
    }
  }
  assert.equal(families.llava_tiny_A, 'llava');
  assert.equal(families.llava_next_tiny_E, 'llava');
  assert.equal(families.qwen2vl_tiny_D, 'qwen2_vl');
  assert.equal(families.llama_tiny_C, 'text');
});

test('llama_tiny_C holds exactly the text backbone of llava_tiny_A', () => {
  const a = openCheckpoint(path.join(FIXTURES, 'llava_tiny_A'));
  const c = openCheckpoint(path.join(FIXTURES, 'llama_tiny_C'));
  try {
    for (const name of c.names()) {
      assert.deepEqual(c.readF32(name, { transpose2d: c.entry(name).shape.length === 2 }),
        a.readF32(`language_model.${name}`, { transpose2d: a.entry(`language_model.${name}`).shape.length === 2 }), name);
    }
  } finally {
    a.close();
    c.close();
  }
});

test('a sharded index (2 shards) reads identically to the single file', () => {
  const all = loadAll('llava_tiny_A');
  const names = Object.keys(all).sort();
  const dir = folderWithConfig('sharded', 'llava_tiny_A');
  const shards = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  const weightMap: Record<string, string> = {};
  const parts: Record<string, TensorToWrite>[] = [{}, {}];
  names.forEach((n, i) => {
    const k = i < names.length / 2 ? 0 : 1;
    parts[k][n] = all[n];
    weightMap[n] = shards[k];
  });
  writeSafetensors(path.join(dir, shards[0]), parts[0], { format: 'pt' });
  writeSafetensors(path.join(dir, shards[1]), parts[1], { format: 'pt' });
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));

  const single = openCheckpoint(path.join(FIXTURES, 'llava_tiny_A'));
  const sharded = openCheckpoint(dir);
  try {
    assert.equal(sharded.files.length, 2);
    assertSameTensors(single, sharded);
    assert.equal(sharded.totalBytes(), single.totalBytes());
    assert.equal(path.basename(sharded.entry(names[names.length - 1]).file), shards[1]);
  } finally {
    single.close();
    sharded.close();
  }

  // Shard listed but missing.
  fs.renameSync(path.join(dir, shards[1]), path.join(dir, 'elsewhere.bin.tmp'));
  assertCheckpointError(() => openCheckpoint(dir), /model\.safetensors\.index\.json/, /shard 'model-00002-of-00002\.safetensors'/, /is missing from/);
  fs.renameSync(path.join(dir, 'elsewhere.bin.tmp'), path.join(dir, shards[1]));

  // A tensor mapped to the wrong shard.
  const wrong = { ...weightMap, [names[0]]: shards[1] };
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: wrong }));
  assertCheckpointError(() => openCheckpoint(dir), /1 tensor\(s\) mapped to shard 'model-00002-of-00002\.safetensors' are not in it/, new RegExp(names[0].replace(/\./g, '\\.')));

  // Shard names may not leave the folder.
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: '../x.safetensors' } }));
  assertCheckpointError(() => openCheckpoint(dir), /shard name '\.\.\/x\.safetensors' must be a file inside/);
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weights: {} }));
  assertCheckpointError(() => openCheckpoint(dir), /has no "weight_map" object/);
});

/** Rewrites canonical names into the transformers ≥ 4.52 layout. */
function toNewer(name: string, family: 'llava' | 'qwen2_vl'): string {
  const rules: [string, string][] =
    family === 'llava'
      ? [['language_model.model.', 'model.language_model.'], ['language_model.lm_head.', 'lm_head.'],
          ['vision_tower.', 'model.vision_tower.'], ['multi_modal_projector.', 'model.multi_modal_projector.'],
          ['image_newline', 'model.image_newline']]
      : [['model.', 'model.language_model.'], ['visual.', 'model.visual.']];
  for (const [from, to] of rules) if (name.startsWith(from)) return to + name.slice(from.length);
  return name;
}

test('the newer (transformers ≥ 4.52) name layout maps back to the canonical names', () => {
  for (const [fixture, family] of [['llava_tiny_A', 'llava'], ['llava_next_tiny_E', 'llava'], ['qwen2vl_tiny_D', 'qwen2_vl']] as const) {
    const all = loadAll(fixture, 'model-bf16.safetensors');
    const renamed: Record<string, TensorToWrite> = {};
    for (const [n, t] of Object.entries(all)) renamed[toNewer(n, family)] = t;
    const stored = Object.keys(renamed);
    assert.ok(!stored.some((n) => n.startsWith('language_model.') || n.startsWith('vision_tower.') || n.startsWith('visual.')));
    if (fixture === 'llava_next_tiny_E') assert.ok(stored.includes('model.image_newline'));
    for (const n of stored) assert.equal(toNewer(canonicalName(n, family), family), n);

    const dir = folderWithConfig(`newer-${fixture}`, fixture);
    writeSafetensors(path.join(dir, 'model.safetensors'), renamed);
    const a = openCheckpoint(path.join(FIXTURES, fixture), { file: 'model-bf16.safetensors', layout: nameLayoutOf });
    const b = openCheckpoint(dir, { layout: nameLayoutOf });
    try {
      assert.equal(b.family, family);
      assertSameTensors(a, b);
      const lm = family === 'llava' ? 'language_model.lm_head.weight' : 'lm_head.weight';
      assert.equal(b.entry(lm).name, 'lm_head.weight');
      assert.equal(b.entry(lm).canonicalName, lm);
    } finally {
      a.close();
      b.close();
    }
  }
});

test('two stored names mapping to one canonical name is an error', () => {
  const all = loadAll('llava_tiny_A');
  const dir = folderWithConfig('mixed-layout', 'llava_tiny_A');
  const t = all['language_model.model.norm.weight'];
  writeSafetensors(path.join(dir, 'model.safetensors'), { 'language_model.model.norm.weight': t, 'model.language_model.norm.weight': t });
  assertCheckpointError(() => openCheckpoint(dir, { layout: nameLayoutOf }), /both map to 'language_model\.model\.norm\.weight'/);
});

test('a missing tensor names the tensor and the folder', () => {
  const dir = path.join(FIXTURES, 'llava_tiny_A');
  withCheckpoint(dir, (c) => {
    assert.ok(!c.has('language_model.model.layers.9.mlp.up_proj.weight'));
    assertCheckpointError(
      () => c.readF32('language_model.model.layers.9.mlp.up_proj.weight'),
      /missing tensor 'language_model\.model\.layers\.9\.mlp\.up_proj\.weight'/,
      new RegExp(`checkpoint ${dir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`),
      /similar: language_model\.model\.layers\.\d\.mlp\.up_proj\.weight/,
    );
    assertCheckpointError(() => c.entry('nope'), /missing tensor 'nope'/);
  });
});

test('requireTensors reports every missing, unexpected and wrong-shape tensor at once', () => {
  const want = [...tensorNames('llava_tiny_A')].map(([name, shape]) => ({ name, shape }));
  withCheckpoint(path.join(FIXTURES, 'llava_tiny_A'), (c) => {
    requireTensors(c, want);
    const edited = want
      .filter((t) => t.name !== 'multi_modal_projector.linear_2.bias')
      .map((t) => (t.name === 'language_model.model.norm.weight' ? { ...t, shape: [32] } : t));
    edited.push({ name: 'language_model.model.layers.4.self_attn.q_proj.weight', shape: [64, 64] });
    edited.push({ name: 'image_newline', shape: [64] });
    assertCheckpointError(
      () => requireTensors(c, edited),
      /does not match the model/,
      /2 missing:\n\s+language_model\.model\.layers\.4\.self_attn\.q_proj\.weight\n\s+image_newline/,
      /1 unexpected:\n\s+multi_modal_projector\.linear_2\.bias/,
      /1 wrong shape:\n\s+language_model\.model\.norm\.weight: file \[64\], model expects \[32\]/,
    );
    requireTensors(c, want.filter((t) => !t.name.startsWith('vision_tower.')), { ignoreUnexpected: [/^vision_tower\./] });
  });
});

test('pickle-only folders are refused with how to convert', () => {
  const dir = folderWithConfig('pickle', 'llama_tiny_C');
  fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), Buffer.from('not really a pickle'));
  assertCheckpointError(
    () => openCheckpoint(dir),
    /pytorch_model\.bin/, /pickle/i, /execute arbitrary code/, /never loads them/,
    /save_pretrained\(out_dir, safe_serialization=True\)/, /safetensors\.torch\.save_file/,
  );
  fs.copyFileSync(path.join(FIXTURES, 'llama_tiny_C', 'model.safetensors'), path.join(dir, 'model.safetensors'));
  withCheckpoint(dir, (c) => assert.ok(c.has('lm_head.weight'))); // safetensors next to a pickle: fine
  assertCheckpointError(() => openCheckpoint(dir, { file: 'pytorch_model.bin' }), /never loads them/);
});

test('folder problems: missing or invalid config.json, no weights, unknown file option, no folder', () => {
  const noConfig = path.join(tmp, 'no-config');
  fs.mkdirSync(noConfig);
  fs.copyFileSync(path.join(FIXTURES, 'llama_tiny_C', 'model.safetensors'), path.join(noConfig, 'model.safetensors'));
  assertCheckpointError(() => openCheckpoint(noConfig), /no-config[\\/]config\.json: config\.json is missing: hopscope needs the HuggingFace model config/);

  fs.writeFileSync(path.join(noConfig, 'config.json'), '{"model_type": "llama",');
  assertCheckpointError(() => openCheckpoint(noConfig), /config\.json is not valid JSON/);
  fs.writeFileSync(path.join(noConfig, 'config.json'), '[]');
  assertCheckpointError(() => openCheckpoint(noConfig), /config\.json is not a JSON object/);

  const onlyOther = folderWithConfig('only-bf16', 'llama_tiny_C');
  fs.copyFileSync(path.join(FIXTURES, 'llama_tiny_C', 'model-bf16.safetensors'), path.join(onlyOther, 'model-bf16.safetensors'));
  assertCheckpointError(() => openCheckpoint(onlyOther), /no model\.safetensors/, /model-bf16\.safetensors/, /`file` option/);
  assertCheckpointError(() => openCheckpoint(onlyOther, { file: 'model-f16.safetensors' }), /'model-f16\.safetensors' not found/);
  withCheckpoint(onlyOther, (c) => assert.equal(c.entry('lm_head.weight').dtype, 'BF16'), 'model-bf16.safetensors');

  const empty = folderWithConfig('empty', 'llama_tiny_C');
  assertCheckpointError(() => openCheckpoint(empty), /no weights found/);
  assertCheckpointError(() => openCheckpoint(path.join(tmp, 'nowhere')), /nowhere: checkpoint folder does not exist/);
});
