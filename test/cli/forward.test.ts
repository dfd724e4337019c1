// `hopscope forward` on an inputs.json: raw uint8 images (no pixel_values) go through each family's own image
// processor and give HF's logits; the second-round fixtures' nested per-row, per-image pixel_values are read.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import { shutdownEngine } from '../../src/engine/backend';
import { FIXTURES, FIXTURES2 } from '../fixtures/paths';
import { maxDiff, readJson } from '../models/helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-forward-'));
after(() => {
  shutdownEngine();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Runs `hopscope forward` on a copy of the fixture's inputs.json edited by `edit`; returns the written JSON. */
async function forward(dir: string, edit: (inp: Record<string, unknown>) => void, extra: string[] = []): Promise<{ code: number; json?: Record<string, any> }> {
  const inp = readJson(path.join(dir, 'inputs.json'));
  edit(inp);
  const name = path.basename(dir) + '-' + Math.random().toString(36).slice(2);
  const inFile = path.join(tmp, `${name}.in.json`);
  const outFile = path.join(tmp, `${name}.out.json`);
  fs.writeFileSync(inFile, JSON.stringify(inp));
  const code = await main(['forward', '--model', dir, '--inputs', inFile, '--out', outFile, ...extra]);
  return { code, json: fs.existsSync(outFile) ? readJson(outFile) : undefined };
}

function assertLogits(dir: string, json: Record<string, any>): void {
  const inp = readJson(path.join(dir, 'inputs.json'));
  const out = readJson(path.join(dir, 'outputs.json'));
  const V = out.logits[0][0].length;
  const d = maxDiff(Float32Array.from(json.logits.flat(2)), out.logits, (inp.attention_mask as number[][]).flat(), V);
  assert.ok(d < 1e-5, `${path.basename(dir)}: logits differ by ${d}`);
}

test('LLaVA-NeXT (E) from raw images only: hopscope forward matches HF logits', async () => {
  const dir = path.join(FIXTURES, 'llava_next_tiny_E');
  const r = await forward(dir, (inp) => delete inp.pixel_values);
  assert.equal(r.code, 0);
  assertLogits(dir, r.json!);
});

test('Pixtral (P) from raw images only: hopscope forward matches HF logits and greedy tokens', async () => {
  const dir = path.join(FIXTURES2, 'pixtral_tiny_P');
  const r = await forward(
    dir,
    (inp) => {
      delete inp.pixel_values;
      delete inp.image_sizes; // the processor says each image's size
    },
    ['--generate', '5'],
  );
  assert.equal(r.code, 0);
  assertLogits(dir, r.json!);
  assert.deepEqual(r.json!.new_tokens[0], readJson(path.join(dir, 'outputs.json')).generation.new_tokens);
  assert.equal(r.json!.hidden_states.length, 5);
});

test('Pixtral (P) nested per-row, per-image pixel_values of different sizes are read as given', async () => {
  const dir = path.join(FIXTURES2, 'pixtral_tiny_P');
  const r = await forward(dir, (inp) => delete inp.raw_images_uint8_hwc);
  assert.equal(r.code, 0);
  assertLogits(dir, r.json!);
});

test('without pixel values or raw images, an image prompt is refused with the reason', async () => {
  const dir = path.join(FIXTURES, 'llava_next_tiny_E');
  const r = await forward(dir, (inp) => {
    delete inp.pixel_values;
    delete inp.raw_images_uint8_hwc;
  });
  assert.equal(r.code, 2);
  assert.equal(r.json, undefined);
});
