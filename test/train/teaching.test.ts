// The teaching-model pipeline at toy sizes: loss goes down, runs are bitwise deterministic, a resumed run
// equals an uninterrupted one, the saved HF folder reloads with identical logits, and no tensors leak.
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as childProcess from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { generateToyworld } from '../../src/data/toyworld';
import { loadModelFromDir } from '../../src/models/load';
import { copyExamples, epochBatches, imagePrompt, instructExamples, lmExamples, loadTeachingData, pixelsOf, promptIds, spanPromptIds, SPAN_FILLER, viewRgb } from '../../src/train/data';
import { inMemoryLlava } from '../../src/train/export';
import { trainLoop } from '../../src/train/loop';
import { embedWithImages, getter, imageReadMass, initLm, lmForward, project, regionReadMass, tokenLoss, vitFeatures } from '../../src/train/nets';
import { readHost, recordedRecipe } from '../../src/train/host-io';
import { disposeParams, toDevice, type HostTensor } from '../../src/train/params';
import { absenceRows, backboneMetadata, groundLayers, groundTargets, resolveRecipe, trainTeachingModel, type TeachingRecipe } from '../../src/train/teaching';

const TINY: Partial<TeachingRecipe> = {
  lm: { d: 16, layers: 2, heads: 2, inter: 32, ropeTheta: 10000, eps: 1e-5 },
  vit: { patch: 8, d: 16, layers: 2, heads: 2, inter: 32, eps: 1e-5 },
  featureLayer: -1,
  extraViews: 1,
  stages: {
    lm: { steps: 3, batch: 16, lr: 3e-3, warmup: 1 },
    vision: { steps: 2, batch: 16, lr: 2e-3, warmup: 1 },
    align: { steps: 3, batch: 8, lr: 2e-3, warmup: 1 },
    instruct: { steps: 3, batch: 8, lr: 1e-3, warmup: 1 },
    ground: { steps: 3, batch: 8, lr: 1e-3, warmup: 1 },
    readout: { steps: 3, batch: 8, lr: 1e-3, warmup: 1 },
  },
};

/** TINY with a grounding stage (block 2, target block 1, the ViT trained) in place of instruct. */
const GROUND: Partial<TeachingRecipe> = { ...TINY, stages: { ...TINY.stages!, ground: { steps: 12, batch: 8, lr: 3e-3, warmup: 1 } }, ground: { layer: 2, targetLayer: 1, weight: 1, vit: 'train' } };

let tmp: string;
let dataDir: string;

/** A host tensor's float32 bytes (weights compare bit for bit). */
const bytesOf = (v: HostTensor): Buffer => Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength);

function same(a: Map<string, HostTensor>, b: Map<string, HostTensor>): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, v] of a) assert.ok(bytesOf(v).equals(bytesOf(b.get(k)!)), `${k} differs`);
}

before(async () => {
  await initEngine({ threads: 2 });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-train-'));
  dataDir = path.join(tmp, 'world');
  generateToyworld({ seed: 7, outDir: dataDir, entitiesPerType: 4, viewsPerEntity: 3, imageSize: 16, heldoutPerEntity: 2 });
});

after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  shutdownEngine();
});

describe('teaching pipeline', () => {
  test('a few LM steps reduce the loss, and tensors return to baseline', () => {
    const data = loadTeachingData(dataDir);
    const s = { ...TINY.lm!, vocab: data.tokenizer.vocabSize };
    const batch = epochBatches(lmExamples(data), 16, 0, 'lm', 0, data.tokenizer.padTokenId!)[0];
    const params = toDevice(initLm(3, s));
    const base = tf.memory().numTensors;
    const res = trainLoop({
      stage: 'lm',
      steps: 8,
      batch: () => batch,
      loss: (get, b) => tokenLoss(lmForward(get, s, embedWithImages(get, s, b.ids, data.imageTokenId, null)), b.targets),
      trainable: params,
      frozen: new Map(),
      lr: 1e-2,
      warmup: 1,
    });
    assert.ok(res.losses[7] < res.losses[0] - 0.1, `loss ${res.losses[0]} -> ${res.losses[7]}`);
    disposeParams(res.params);
    assert.equal(tf.memory().numTensors, base);
    disposeParams(params);
  });

  test('same seed gives bitwise-identical weights; a resumed run equals an uninterrupted one', async () => {
    const a = await trainTeachingModel({ seed: 5, dataDir, runDir: path.join(tmp, 'runA'), recipe: TINY });
    const b = await trainTeachingModel({ seed: 5, dataDir, runDir: path.join(tmp, 'runB'), recipe: TINY });
    same(a.params, b.params);
    const runC = path.join(tmp, 'runC');
    const c1 = await trainTeachingModel({ seed: 5, dataDir, runDir: runC, recipe: TINY, stopAt: { stage: 'instruct', step: 1 } });
    assert.equal(c1.stoppedEarly, true);
    const c2 = await trainTeachingModel({ seed: 5, dataDir, runDir: runC, recipe: TINY });
    assert.equal(c2.stoppedEarly, false);
    same(a.params, c2.params);
    // LM and vision pretraining run separately (as cli.ts --jobs does, in two processes) into one run folder:
    // the full run then picks up each stage's own parameters and ends where the sequential run ends.
    const runF = path.join(tmp, 'runF');
    await trainTeachingModel({ seed: 5, dataDir, runDir: runF, recipe: TINY, stages: ['vision'] });
    await trainTeachingModel({ seed: 5, dataDir, runDir: runF, recipe: TINY, stages: ['lm'] });
    same(a.params, (await trainTeachingModel({ seed: 5, dataDir, runDir: runF, recipe: TINY })).params);
  });

  test('a default run records the recipe exactly as the shipped v5 weights do (their reproduction stays byte for byte)', () => {
    const { recipeMetadata, resolveRecipe } = require('../../src/train/teaching') as typeof import('../../src/train/teaching');
    for (const file of ['data/teaching/v5/model.safetensors', 'data/teaching/v5/backbone/model.safetensors'])
      assert.equal(recipeMetadata(0, resolveRecipe()).hopscope_recipe, recordedRecipe(path.join(__dirname, '..', '..', file)), file);
    assert.match(recipeMetadata(0, resolveRecipe({ ground: { layer: 1, weight: 1, vit: 'train' } })).hopscope_recipe, /"ground":\{"layer":1/);
  });

  test('nameFirst adds the text twin of each image prompt: the name where the image goes, for identification and every question', () => {
    const data = loadTeachingData(dataDir);
    const base = lmExamples(data);
    const twin = lmExamples(data, { nameFirst: true });
    const relations = data.entities.reduce((n, e) => n + Object.keys(e.facts).length, 0);
    assert.equal(twin.length - base.length, data.entities.length + relations);
    const e = data.entities[0];
    const tok = data.tokenizer;
    const key = (ex: { ids: number[] }) => ex.ids.join(',');
    const baseKeys = new Set(base.map(key));
    const added = twin.filter((ex) => !baseKeys.has(key(ex)));
    assert.equal(added.length, twin.length - base.length);
    assert.ok(added.every((ex) => !ex.ids.includes(data.imageTokenId)), 'text only');
    const want = tok.encode(imagePrompt(data, data.templates.identification[e.type].query).replace(data.templates.promptTemplate.imageToken, e.subject));
    const hit = added.find((ex) => want.every((t, i) => ex.ids[i] === t));
    assert.ok(hit, 'the identification twin of the first entity');
    // Only the answer is scored, and it names the entity.
    const scored = hit.targets.filter((t) => t >= 0);
    assert.equal(hit.targets.findIndex((t) => t >= 0), want.length - 1);
    assert.ok(tok.decode(scored, { skipSpecialTokens: true }).includes(e.subject.split(' ')[0].toLowerCase()) || tok.decode(scored, { skipSpecialTokens: true }).includes(e.subject.split(' ')[0]));
  });

  test('span twins: the name right-aligned in the image positions after <unk> fillers; made-up names for copying', () => {
    const data = loadTeachingData(dataDir);
    const e = data.entities[0];
    const q = data.templates.identification[e.type].query;
    const N = (data.imageSize / 8) ** 2;
    const ids = spanPromptIds(data, e, q, N);
    const img = promptIds(data, imagePrompt(data, q), N);
    assert.equal(ids.length, img.length, 'the twin has the image prompt layout');
    const start = img.indexOf(data.imageTokenId);
    const name = data.tokenizer.encode(e.subject, { addSpecialTokens: false });
    assert.deepEqual(ids.slice(start, start + N), [...new Array<number>(N - name.length).fill(SPAN_FILLER), ...name]);
    assert.deepEqual(ids.slice(0, start), img.slice(0, start));
    assert.deepEqual(ids.slice(start + N), img.slice(start + N));
    assert.throws(() => spanPromptIds(data, e, q, 1), /more than the image's 1 positions/);
    const base = lmExamples(data);
    const twins = lmExamples(data, { span: N });
    const relations = data.entities.reduce((n, x) => n + Object.keys(x.facts).length, 0);
    assert.equal(twins.length - base.length, data.entities.length + relations);
    const copies = copyExamples(data, N, 2);
    assert.equal(copies.length, 2 * data.entities.length);
    assert.deepEqual(copies, copyExamples(data, N, 2), 'seeded');
    // Each copy example names in its answer exactly what its span holds (scored), and at least one name is no entity's.
    const subjects = new Set(data.entities.map((x) => x.subject));
    let novel = 0;
    for (const ex of copies) {
      const spanText = data.tokenizer.decode(ex.ids.slice(start, start + N).filter((t) => t !== SPAN_FILLER), { skipSpecialTokens: true });
      const scored = data.tokenizer.decode(ex.targets.filter((t) => t >= 0), { skipSpecialTokens: true });
      assert.ok(scored.includes(spanText), `${scored} names ${spanText}`);
      if (!subjects.has(spanText)) novel++;
    }
    assert.ok(novel > copies.length / 2, `${novel} made-up names`);
    // The subject a read-by deadline protects: a text question's name, a twin's or copy's whole span.
    for (const ex of base.filter((x) => x.subject)) {
      const at = data.tokenizer.decode(ex.ids.slice(ex.subject!.start, ex.subject!.start + ex.subject!.n), { skipSpecialTokens: true });
      assert.ok(data.entities.some((x) => x.subject === at), `a text question's subject reads "${at}"`);
    }
    assert.equal(base.filter((x) => x.subject).length, relations, 'one per text question (the sentences and CoT rows have none)');
    const spans = [...twins, ...copies].filter((x) => x.subject && x.subject.n === N);
    assert.equal(spans.length, data.entities.length + relations + copies.length);
    assert.ok(spans.every((x) => x.subject!.start === start && x.subject!.span));
    assert.ok(base.every((x) => !x.subject?.span), "a text question's subject is a name, not a span");
  });

  test("span replay: the readout's mix adds the backbone's span twins of every question (text only), nothing else changes", () => {
    const data = loadTeachingData(dataDir);
    const N = (data.imageSize / 8) ** 2;
    const mix = { identification: 2, visualQa: true, visualCot: true, textReplay: true };
    const base = instructExamples(data, N, mix);
    const replay = instructExamples(data, N, { ...mix, spanReplay: true });
    const key = (ex: { ids: number[]; targets: number[] }) => `${ex.ids.join(',')}|${ex.targets.join(',')}`;
    const baseKeys = base.map(key);
    const inBase = new Set(baseKeys);
    const added = replay.filter((x) => !inBase.has(key(x)));
    const relations = data.entities.reduce((n, e) => n + Object.keys(e.facts).length, 0);
    assert.equal(replay.length - base.length, relations, 'one per fact, held-out pairs included');
    assert.equal(added.length, relations);
    assert.deepEqual(replay.map(key).filter((k) => inBase.has(k)), baseKeys, 'the rest of the mix as it was, in order');
    // Exactly the question twins the backbone pretrained on (lmExamples with span: N), so the replay asks nothing new.
    const start = promptIds(data, imagePrompt(data, 'q'), N).indexOf(data.imageTokenId);
    const twins = new Set(lmExamples(data, { span: N }).filter((x) => x.subject?.span).map(key));
    assert.ok(added.every((x) => twins.has(key(x))), "each replayed example is one of the backbone's span twins");
    assert.ok(added.every((x) => !x.image && !x.ids.includes(data.imageTokenId) && x.ids[start + N - 1] !== SPAN_FILLER), 'no image; the name ends the span');
  });

  test('align-only grounding (span positions, token term at layer 0): deterministic, the LM untouched, loss falls', async () => {
    const recipe: Partial<TeachingRecipe> = {
      ...TINY,
      lmNameFirst: 'span',
      lmCopies: 1,
      stages: { ...TINY.stages!, ground: { steps: 10, batch: 8, lr: 3e-3, warmup: 1 } },
      ground: { layer: 0, weight: 1, vit: 'train', positions: 'span', tokenLoss: false, tokenCe: 1 },
    };
    const run = (dir: string, r = recipe) => trainTeachingModel({ seed: 5, dataDir, runDir: path.join(tmp, dir), recipe: r });
    const g = await run('span1');
    same(g.params, (await run('span2')).params);
    const lm = (m: Map<string, HostTensor>) => new Map([...m].filter(([k]) => k.startsWith('lm.')));
    same(lm(g.params), lm(g.backbone!));
    const st = JSON.parse(fs.readFileSync(path.join(tmp, 'span1', 'ground', 'state.json'), 'utf8')) as { losses: number[] };
    assert.equal(st.losses.length, 10);
    assert.ok(st.losses.slice(-3).reduce((a, b) => a + b) < st.losses.slice(0, 3).reduce((a, b) => a + b), `ground loss ${st.losses.map((x) => x.toFixed(3)).join(' ')}`);
    // A late knob (the fresh state of block 1 at block 2, for half of the entities) runs the LM's first blocks only.
    const late = await run('span3', { ...recipe, ground: { layer: 2, layers: [1, 2], targetLayer: 1, weight: 1, vit: 'train', positions: 'span', tokenLoss: false } });
    same(lm(late.params), lm(g.backbone!));
    const dealt = groundLayers({ layer: 0, layers: [1, 3] }, 9, 0);
    assert.deepEqual([dealt.filter((l) => l === 1).length, dealt.filter((l) => l === 3).length], [5, 4]);
    assert.deepEqual(dealt, groundLayers({ layer: 0, layers: [1, 3] }, 9, 0), 'seeded');
    assert.notDeepEqual(dealt, groundLayers({ layer: 0, layers: [1, 3] }, 9, 1));
    assert.deepEqual(groundLayers({ layer: 2 }, 3, 0), [2, 2, 2]);
    await assert.rejects(run('span4', { ...recipe, ground: { layer: 1, layers: [1, 7], weight: 1, vit: 'train', positions: 'span', tokenLoss: false } }), /recipe.ground.layers: 7 is not a block 0..2/);
    // absentAt: a late knob that also keeps the entity out of the image's block-1 states runs, deterministically,
    // changes what grounding learns, and must name a block below every entity's.
    const absentRecipe: Partial<TeachingRecipe> = { ...recipe, ground: { layer: 2, targetLayer: 1, weight: 1, vit: 'train', positions: 'span', tokenLoss: false, absentAt: { layer: 1, weight: 1 } } };
    const abs = await run('absent1', absentRecipe);
    same(abs.params, (await run('absent2', absentRecipe)).params);
    same(lm(abs.params), lm(g.backbone!));
    const plain = await run('absent0', { ...absentRecipe, ground: { ...absentRecipe.ground!, absentAt: undefined } });
    assert.ok([...abs.params].some(([k, v]) => k.startsWith('proj.') && !bytesOf(v).equals(bytesOf(plain.params.get(k)!))), 'the absence term changes the projector');
    await assert.rejects(run('absent3', { ...absentRecipe, ground: { ...absentRecipe.ground!, absentAt: { layer: 2, weight: 1 } } }), /recipe.ground.absentAt: needs .* a block below the grounding block/);
    // With a mixture of blocks the term keeps the entity out of the late entities' states only: the early ones
    // (dealt at or below the absence block) are exempt, and one entity at least must be dealt above it.
    assert.deepEqual(absenceRows([1, 3, 3, 1], 1, [0, 1, 2, 3, 1]), [0, 1, 1, 0, 1]);
    assert.deepEqual(absenceRows([2, 2], 1, [1, 0]), [1, 1]);
    const mixRecipe: Partial<TeachingRecipe> = { ...absentRecipe, ground: { ...absentRecipe.ground!, layers: [1, 2], targetLayer: 2, absentAt: { layer: 1, weight: 1 } } };
    const mix = await run('absentmix1', mixRecipe);
    same(mix.params, (await run('absentmix2', mixRecipe)).params);
    const mixPlain = await run('absentmix0', { ...mixRecipe, ground: { ...mixRecipe.ground!, absentAt: undefined } });
    assert.ok([...mix.params].some(([k, v]) => k.startsWith('proj.') && !bytesOf(v).equals(bytesOf(mixPlain.params.get(k)!))), 'the absence term changes a mixture');
    await assert.rejects(run('absentmix3', { ...mixRecipe, ground: { ...mixRecipe.ground!, absentAt: { layer: 2, weight: 1 } } }), /recipe.ground.absentAt: needs .* a block below some entity's/);
    // fillerWeight: the name's positions weigh 1 and the <unk> fillers less, in the targets' mask.
    const data = loadTeachingData(dataDir);
    const N = (data.imageSize / 8) ** 2;
    const size = { ...TINY.lm!, vocab: data.tokenizer.vocabSize };
    const dev = toDevice(g.backbone!);
    const t = groundTargets(data, size, getter(dev), 1, N, 0.25);
    const mask = t.mask.arraySync() as number[][];
    data.entities.forEach((e, i) => {
      const k = data.tokenizer.encode(e.subject, { addSpecialTokens: false }).length;
      assert.deepEqual(mask[i], [...new Array<number>(N - k).fill(0.25), ...new Array<number>(k).fill(1)], e.subject);
    });
    assert.deepEqual(t.states.shape, [data.entities.length, N, size.d]);
    tf.dispose([t.states, t.mask]);
    disposeParams(dev);
  });

  test('readout after grounding tunes only the LM blocks from `from` on: the ViT, projector and early blocks stay as grounding left them', async () => {
    const recipe: Partial<TeachingRecipe> = {
      ...TINY,
      lmNameFirst: 'span',
      stages: { ...TINY.stages!, readout: { steps: 6, batch: 8, lr: 3e-3, warmup: 1 } },
      ground: { layer: 1, weight: 1, vit: 'train', positions: 'span', tokenLoss: false },
      readout: { from: 1, mix: { identification: 2, visualQa: true, visualCot: true, textReplay: true } },
    };
    const run = (dir: string, r = recipe) => trainTeachingModel({ seed: 5, dataDir, runDir: path.join(tmp, dir), recipe: r });
    const r = await run('readout1');
    same(r.params, (await run('readout2')).params);
    const grounded = readHost(path.join(tmp, 'readout1', 'ground', 'params.safetensors'));
    const changed = [...r.params].filter(([k, v]) => !bytesOf(v).equals(bytesOf(grounded.get(k)!))).map(([k]) => k);
    assert.ok(changed.length > 0 && changed.every((k) => k.startsWith('lm.l1.')), `changed: ${changed.join(', ')}`);
    assert.ok(changed.includes('lm.l1.down') && changed.includes('lm.l1.q'), `changed: ${changed.join(', ')}`);
    const st = JSON.parse(fs.readFileSync(path.join(tmp, 'readout1', 'readout', 'state.json'), 'utf8')) as { losses: number[] };
    assert.equal(st.losses.length, 6);
    await assert.rejects(run('readout3', { ...recipe, readout: { ...recipe.readout!, from: 2 } }), /recipe.readout.from 2: expected a block 0..1/);
    await assert.rejects(run('readout4', { ...recipe, ground: null }), /recipe.readout needs recipe.ground/);

    // readBy: the image read by block 1, so block 1's attention from the text after the image to the image is
    // penalised. It changes the weights (deterministically), and lowers that attention on a readout batch.
    const longer: Partial<TeachingRecipe> = { ...recipe, stages: { ...recipe.stages!, readout: { steps: 40, batch: 8, lr: 1e-2, warmup: 1 } } };
    const byRecipe: Partial<TeachingRecipe> = { ...longer, readout: { ...recipe.readout!, readBy: { layer: 1, weight: 20 } } };
    const plain = await run('readby0', longer);
    const by = await run('readby1', byRecipe);
    same(by.params, (await run('readby2', byRecipe)).params);
    assert.ok([...by.params].some(([k, v]) => !bytesOf(v).equals(bytesOf(plain.params.get(k)!))), 'readBy changed nothing');
    const spec = by.spec;
    const data = loadTeachingData(dataDir);
    const nTok = (spec.vit.image / spec.vit.patch) ** 2;
    const S = data.imageSize;
    const es = data.entities.filter((e) => e.type === data.entities[0].type).slice(0, 4);
    const ids = es.map((e) => promptIds(data, imagePrompt(data, data.templates.identification[e.type].query), nTok));
    const massOf = (params: Map<string, HostTensor>) => {
      const dev = toDevice(params);
      try {
        return tf.tidy(() => {
          const g = getter(dev);
          const px = tf.tensor4d(pixelsOf(data, es.map((e) => viewRgb(data, e, data.testViews[0], true))), [es.length, 3, S, S]);
          const trace = { attention: [] as tf.Tensor[] };
          lmForward(g, spec.lm, embedWithImages(g, spec.lm, ids, data.imageTokenId, project(g, vitFeatures(g, spec.vit, px, spec.featureLayer))), trace);
          return imageReadMass(trace.attention.slice(1), ids, data.imageTokenId, spec.padId, spec.lm.heads).dataSync()[0];
        });
      } finally {
        disposeParams(dev);
      }
    };
    const [plainMass, byMass] = [massOf(plain.params), massOf(by.params)];
    assert.ok(byMass < plainMass * 0.8, `block-1 attention on the image: ${byMass} with readBy, ${plainMass} without`);
    for (const readBy of [{ layer: 2, weight: 1 }, { layer: 0, weight: 1 }, { layer: 1, weight: 0 }])
      await assert.rejects(run('readby3', { ...recipe, readout: { ...recipe.readout!, readBy } }), /recipe.readout.readBy: expected a block 1..1 and a weight > 0/);
  });

  test('imageReadMass: the mean attention that the real positions after the image pay to it, per head and block', () => {
    const before = tf.memory().numTensors;
    // ids: bos, image, image, text, text, pad; image token 9, pad 0. Queries 3 and 4 count; 5 is padding.
    const ids = [[1, 9, 9, 5, 6, 0]];
    const block = (a: number, b: number) =>
      tf.tensor3d([[[1, 0, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0, 0], [0.2, 0.3, 0.5, 0, 0, 0], [0.1, 0.2, 0.3, 0.4, 0, 0], [0.5, a, b, 0, 0, 0.5 - a - b], [0, 1, 0, 0, 0, 0]]], [1, 6, 6]);
    const m = tf.tidy(() => imageReadMass([block(0.1, 0.1), block(0, 0.3)], ids, 9, 0, 1).dataSync()[0]);
    // block 1: queries 3 (0.5) and 4 (0.2); block 2: 0.5 and 0.3. Mean of the four: 0.375; query 5 (padding, 1.0) is left out.
    assert.ok(Math.abs(m - 0.375) < 1e-6, String(m));
    assert.throws(() => imageReadMass([], ids, 9, 0, 1), /needs rows with an image/);
    assert.throws(() => tf.tidy(() => imageReadMass([block(0, 0)], [[1, 5, 6, 0, 0, 0]], 9, 0, 1)), /needs rows with an image/);
    assert.equal(tf.memory().numTensors, before);
  });

  test('regionReadMass: per row, the mean attention the real positions after its region pay to it; rows without one left out', () => {
    const before = tf.memory().numTensors;
    // Three rows, one head, T = 4. Row 0's region is position 1; row 1's positions 0-1; row 2 has none.
    const rows = [
      [[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0.2, 0.6, 0.2, 0], [0.1, 0.3, 0.3, 0.3]],
      [[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0.2, 0.2, 0.6, 0], [0.4, 0.4, 0.1, 0.1]],
      [[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0.1, 0.1, 0.8, 0], [0.25, 0.25, 0.25, 0.25]],
    ];
    const ids = [[1, 5, 6, 7], [1, 5, 6, 0], [1, 5, 6, 7]];
    const probs = tf.tensor3d(rows);
    const m = tf.tidy(() => regionReadMass([probs], ids, [{ start: 1, n: 1 }, { start: 0, n: 2 }, null], 0, 1).dataSync()[0]);
    // Row 0: queries 2 (0.6) and 3 (0.3); row 1: query 2 (0.4), query 3 is padding; row 2 left out. Mean: 1.3 / 3.
    assert.ok(Math.abs(m - 1.3 / 3) < 1e-6, String(m));
    assert.throws(() => regionReadMass([], ids, [null, null, null], 0, 1), /one region \(or null\) per row and at least one block/);
    assert.throws(() => regionReadMass([probs], ids, [null], 0, 1), /one region \(or null\) per row/);
    probs.dispose();
    assert.equal(tf.memory().numTensors, before);
  });

  test('lmReadBy: the backbone reads its subject by the given block; deterministic, and lowers the attention on it from that block on', async () => {
    const recipe: Partial<TeachingRecipe> = { ...TINY, lmNameFirst: 'span', stages: { ...TINY.stages!, lm: { steps: 30, batch: 16, lr: 1e-2, warmup: 1 } } };
    const byRecipe: Partial<TeachingRecipe> = { ...recipe, lmReadBy: { layer: 1, weight: 20 } };
    const run = (dir: string, r = byRecipe) => trainTeachingModel({ seed: 3, dataDir, runDir: path.join(tmp, dir), recipe: r, stages: ['lm'] });
    const plain = await run('lmreadby0', recipe);
    const by = await run('lmreadby1');
    same(by.params, (await run('lmreadby2')).params);
    const data = loadTeachingData(dataDir);
    const ex = lmExamples(data, { span: (data.imageSize / 8) ** 2 }).filter((x) => x.subject).slice(0, 24);
    // Block 1's mean attention on the subject, over the given rows in one padded batch.
    const massOf = (params: Map<string, HostTensor>, rows = ex) => {
      const batch = epochBatches(rows, rows.length, 0, 'check', 0, by.spec.padId)[0];
      const dev = toDevice(params);
      try {
        return tf.tidy(() => {
          const trace = { attention: [] as tf.Tensor[] };
          lmForward(getter(dev), by.spec.lm, embedWithImages(getter(dev), by.spec.lm, batch.ids, data.imageTokenId, null), trace);
          return regionReadMass(trace.attention.slice(1), batch.ids, batch.subjects!, by.spec.padId, by.spec.lm.heads).dataSync()[0];
        });
      } finally {
        disposeParams(dev);
      }
    };
    const [plainMass, byMass] = [massOf(plain.params), massOf(by.params)];
    assert.ok(byMass < plainMass * 0.5, `block-1 attention on the subject: ${byMass} with lmReadBy, ${plainMass} without`);
    // The backbone's metadata says what made it (VLMs that share a backbone folder must share this too).
    assert.match(backboneMetadata(3, resolveRecipe(byRecipe)).hopscope_recipe, /"lmReadBy":\{"layer":1,"weight":20\}/);
    assert.doesNotMatch(backboneMetadata(3, resolveRecipe(recipe)).hopscope_recipe, /lmReadBy/);
    for (const lmReadBy of [{ layer: 2, weight: 1 }, { layer: 0, weight: 1 }, { layer: 1, weight: -1 }])
      await assert.rejects(run('lmreadby3', { ...recipe, lmReadBy }), /recipe.lmReadBy: expected a block 1..1 and a weight > 0/);
    // on: 'span' leaves the text questions' names free: the text rows' block-1 attention on their subject is then
    // not pushed down, while the span twins' is.
    const spanOnly = await run('lmreadby4', { ...byRecipe, lmReadBy: { layer: 1, weight: 20, on: 'span' } });
    assert.ok([...spanOnly.params].some(([k, v]) => !bytesOf(v).equals(bytesOf(by.params.get(k)!))), "on: 'span' trained like 'all'");
    const massOn = (params: Map<string, HostTensor>, span: boolean) => massOf(params, ex.filter((x) => x.subject!.span === span));
    assert.ok(massOn(spanOnly.params, false) > massOn(by.params, false) * 1.5, `text questions: ${massOn(spanOnly.params, false)} with on: 'span', ${massOn(by.params, false)} with 'all'`);
    assert.ok(massOn(spanOnly.params, true) < massOn(plain.params, true) * 0.5, `span twins: ${massOn(spanOnly.params, true)} with on: 'span', ${massOn(plain.params, true)} without`);
    await assert.rejects(run('lmreadby5', { ...recipe, lmReadBy: { layer: 1, weight: 1, on: 'name' as never } }), /recipe.lmReadBy.on: expected 'all' or 'span'/);
    await assert.rejects(run('lmreadby6', { ...recipe, lmNameFirst: true, lmReadBy: { layer: 1, weight: 1, on: 'span' } }), /needs lmNameFirst: 'span'/);
  });

  test('the recipes in data/teaching/recipes name only recipe fields and run at toy size (their stages and knobs are accepted)', async () => {
    const dir = path.join(__dirname, '..', '..', 'data', 'teaching', 'recipes');
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
    assert.ok(files.length >= 3, files.join(', '));
    const { resolveRecipe, DEFAULT_RECIPE } = require('../../src/train/teaching') as typeof import('../../src/train/teaching');
    const known = new Set([...Object.keys(DEFAULT_RECIPE), 'lmNameFirst', 'lmCopies', 'lmReadBy', 'readout', 'kernels']);
    for (const f of files) {
      const r = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Partial<TeachingRecipe>;
      for (const k of Object.keys(r)) assert.ok(known.has(k), `${f}: unknown recipe field ${k}`);
      for (const k of Object.keys(r.stages ?? {})) assert.ok(k in DEFAULT_RECIPE.stages, `${f}: unknown stage ${k}`);
      const full = resolveRecipe(r);
      assert.ok(full.ground && full.readout, `${f}: a pair recipe grounds and reads out`);
      // The same knobs on the toy model (2 blocks): grounding blocks clamp to 0..2, the absence block stays below
      // them, readout starts at most at block 1 (and reads the image by block 1), and steps shrink.
      const clamp = (l: number) => Math.min(l, 2);
      const lowest = Math.min(clamp(full.ground.layer), ...(full.ground.layers ?? []).map(clamp));
      const toy: Partial<TeachingRecipe> = {
        ...TINY,
        lmNameFirst: r.lmNameFirst,
        ...(r.lmReadBy ? { lmReadBy: { ...r.lmReadBy, layer: 1 } } : {}),
        stages: { ...TINY.stages!, ground: { steps: 2, batch: 8, lr: 1e-3, warmup: 1 }, readout: { steps: 2, batch: 8, lr: 1e-3, warmup: 1 } },
        ground: {
          ...full.ground,
          layer: clamp(full.ground.layer),
          targetLayer: clamp(full.ground.targetLayer ?? full.ground.layer),
          layers: full.ground.layers?.map(clamp),
          absentAt: full.ground.absentAt ? { ...full.ground.absentAt, layer: Math.min(full.ground.absentAt.layer, lowest - 1) } : undefined,
        },
        readout: { ...full.readout, from: Math.min(full.readout.from, 1), ...(full.readout.readBy ? { readBy: { ...full.readout.readBy, layer: 1 } } : {}) },
      };
      const res = await trainTeachingModel({ seed: 1, dataDir, runDir: path.join(tmp, `recipe-${f}`), recipe: toy });
      assert.equal(res.stoppedEarly, false, f);
    }
  });

  test('grounding keeps the LM = the backbone, trains projector and ViT, is deterministic, and pulls the image state toward the target', async () => {
    const run = (dir: string, recipe = GROUND) => trainTeachingModel({ seed: 5, dataDir, runDir: path.join(tmp, dir), recipe });
    const g = await run('ground1');
    same(g.params, (await run('ground2')).params);
    assert.equal(fs.existsSync(path.join(tmp, 'ground1', 'instruct')), false, 'instruct does not run when ground is set');
    const lm = (m: Map<string, HostTensor>) => new Map([...m].filter(([k]) => k.startsWith('lm.')));
    same(lm(g.params), lm(g.backbone!));
    // The ViT and the projector moved from where alignment left them (vit: 'train').
    const aligned = readHost(path.join(tmp, 'ground1', 'align', 'params.safetensors'));
    const moved = (prefix: string) => [...g.params].filter(([k, v]) => k.startsWith(prefix) && !bytesOf(v).equals(bytesOf(aligned.get(k)!))).length;
    assert.ok(moved('vis.l') > 0 && moved('proj.') === 4, `moved: vis ${moved('vis.l')}, proj ${moved('proj.')}`);
    const st = JSON.parse(fs.readFileSync(path.join(tmp, 'ground1', 'ground', 'state.json'), 'utf8')) as { losses: number[] };
    assert.equal(st.losses.length, 12);
    assert.ok(st.losses.slice(-3).reduce((a, b) => a + b) < st.losses.slice(0, 3).reduce((a, b) => a + b), `ground loss ${st.losses.map((x) => x.toFixed(3)).join(' ')}`);
    await assert.rejects(run('ground3', { ...GROUND, ground: { layer: 9, weight: 1, vit: 'frozen' } }), /recipe.ground.layer 9: expected 0..2/);
  });

  test('a stage seed reorders only that stage: the stages before it keep their bytes, and the weights record it', async () => {
    const out = (dir: string) => path.join(tmp, `${dir}-out`);
    const run = (dir: string, stageSeeds?: Record<string, number>) => trainTeachingModel({ seed: 5, dataDir, runDir: path.join(tmp, dir), outDir: out(dir), recipe: GROUND, stageSeeds });
    const base = await run('sseed-base');
    const other = await run('sseed-1', { ground: 1 });
    const stageBytes = (dir: string, stage: string) => fs.readFileSync(path.join(tmp, dir, stage, 'params.safetensors'));
    for (const stage of ['lm', 'vision', 'align']) assert.ok(stageBytes('sseed-base', stage).equals(stageBytes('sseed-1', stage)), `${stage} changed`);
    assert.ok(!stageBytes('sseed-base', 'ground').equals(stageBytes('sseed-1', 'ground')), 'another ground seed gave the same grounding');
    // The stage's own seed set to the run's seed is the run itself: the option reseeds the order and nothing else.
    same(base.params, (await run('sseed-5', { ground: 5 })).params);
    const metaOf = (dir: string) => JSON.parse(recordedRecipe(path.join(out(dir), 'model.safetensors'))!) as { seed: number; stageSeeds?: Record<string, number> };
    assert.equal(metaOf('sseed-base').stageSeeds, undefined);
    assert.deepEqual(metaOf('sseed-1').stageSeeds, { ground: 1 });
    assert.equal(metaOf('sseed-1').seed, 5);
    assert.equal(other.stoppedEarly, false);
    await assert.rejects(run('sseed-bad', { grounding: 1 }), /stageSeeds: grounding=1: expected a stage/);
    await assert.rejects(run('sseed-neg', { ground: -1 }), /stageSeeds: ground=-1/);
  });

  test('--stage-seed reaches the pretraining child processes, and a malformed list is refused before training', () => {
    const recipe = path.join(tmp, 'tiny-recipe-sseed.json');
    fs.writeFileSync(recipe, JSON.stringify(TINY));
    const cli = (dir: string, ...extra: string[]) =>
      childProcess.spawnSync(process.execPath, ['--import', 'tsx', 'src/train/cli.ts', '--data', dataDir, '--run', path.join(tmp, `${dir}-run`), '--out', path.join(tmp, dir), '--recipe', recipe, '--seed', '5', '--stages', 'lm,vision', ...extra], {
        encoding: 'utf8',
        cwd: path.resolve(__dirname, '..', '..'),
      });
    const bad = cli('cli-sseed-bad', '--stage-seed', 'lm=1,vision');
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--stage-seed lm=1,vision: expected stage=n pairs.*got 'vision'/);
    assert.equal(fs.existsSync(path.join(tmp, 'cli-sseed-bad-run', 'lm')), false, 'a malformed list started training');
    const unknown = cli('cli-sseed-unknown', '--stage-seed', 'grounding=1');
    assert.notEqual(unknown.status, 0);
    assert.match(unknown.stderr, /stageSeeds: grounding=1: expected a stage \(lm, vision/);
    assert.equal(fs.existsSync(path.join(tmp, 'cli-sseed-unknown-run', 'lm')), false, 'an unknown stage started training');
    // Two child processes (--jobs 2) against this process alone (--jobs 1), both on one thread: the same
    // stage seeds give the same bytes only if the children were given them.
    for (const [dir, ...extra] of [['cli-sseed2', '--stage-seed', 'lm=2,vision=3'], ['cli-sseed1', '--jobs', '1', '--stage-seed', 'lm=2,vision=3'], ['cli-sseed0', '--jobs', '1']]) {
      const r = cli(dir, ...extra);
      assert.equal(r.status, 0, r.stderr.slice(-2000));
      if (dir === 'cli-sseed2') assert.match(r.stderr, /^\[lm\] lm 3\/3 loss/m, 'the LM stage ran in a child process');
    }
    // Each stage's own tensors (a child's file holds the other tower at its initial values, a sequential run's does not).
    for (const [stage, prefix] of [['lm', 'lm.'], ['vision', 'vis.']]) {
      const own = (dir: string) => new Map([...readHost(path.join(tmp, `${dir}-run`, stage, 'params.safetensors'))].filter(([k]) => k.startsWith(prefix)));
      const seeded = own('cli-sseed1');
      assert.ok(seeded.size > 0, stage);
      same(own('cli-sseed2'), seeded);
      assert.ok([...own('cli-sseed0')].some(([k, v]) => !bytesOf(v).equals(bytesOf(seeded.get(k)!))), `${stage}: the stage seed changed nothing`);
    }
    assert.deepEqual(JSON.parse(recordedRecipe(path.join(tmp, 'cli-sseed2', 'backbone', 'model.safetensors'))!).stageSeeds, { lm: 2, vision: 3 });
  });

  test('the training CLI runs LM and vision pretraining as two child processes, then the rest, and writes the folder', () => {
    const recipe = path.join(tmp, 'tiny-recipe.json');
    fs.writeFileSync(recipe, JSON.stringify(TINY));
    const out = path.join(tmp, 'cli-model');
    const r = childProcess.spawnSync(process.execPath, ['--import', 'tsx', 'src/train/cli.ts', '--data', dataDir, '--run', path.join(tmp, 'cli-run'), '--out', out, '--recipe', recipe, '--seed', '5'], {
      encoding: 'utf8',
      cwd: path.resolve(__dirname, '..', '..'),
    });
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    assert.match(r.stderr, /^\[lm\] lm 3\/3 loss/m);
    assert.match(r.stderr, /^\[vision\] vision 2\/2 loss/m);
    assert.match(r.stderr, /^instruct 3\/3 loss/m);
    const m = loadModelFromDir(out);
    assert.equal(m.numLayers, TINY.lm!.layers);
    m.dispose();
    // --eval on the same run folder: the finished stages are not re-run, and the evaluation is the library's
    // own experiments (src/train/contrast.ts), written as eval.json in the run folder.
    const e = childProcess.spawnSync(process.execPath, ['--import', 'tsx', 'src/train/cli.ts', '--data', dataDir, '--run', path.join(tmp, 'cli-run'), '--out', out, '--recipe', recipe, '--seed', '5', '--eval'], {
      encoding: 'utf8',
      cwd: path.resolve(__dirname, '..', '..'),
    });
    assert.equal(e.status, 0, e.stderr.slice(-2000));
    assert.doesNotMatch(e.stderr, /^\[lm\] lm \d+\/\d+ loss/m, 'the LM stage ran again');
    const report = JSON.parse(fs.readFileSync(path.join(tmp, 'cli-run', 'eval.json'), 'utf8')) as Record<string, any>;
    assert.equal(report.layers, TINY.lm!.layers);
    assert.ok(report.recallGap.entitiesTried > 0 && report.recallGap.identification >= 0 && report.recallGap.identification <= 1, JSON.stringify(report.recallGap));
    for (const key of ['probe:last', 'probe:last-image']) assert.equal(report[key].curves.text.length, TINY.lm!.layers, key);
    // Hop 1's timing compares the two modalities at the entity's last token: the probe at 'last-image' read both ways.
    const atEntity = report['probe:last-image'];
    assert.deepEqual(report.resolution, {
      position: 'entity-last',
      text: atEntity.textResolved,
      image: atEntity.transferResolved,
      imageLater: atEntity.textResolved === null || atEntity.transferResolved === null ? null : atEntity.transferResolved - atEntity.textResolved,
      // The lag's bootstrap interval, from the same probe run.
      imageLaterCI: atEntity.intervals.lag.transfer,
    });
    assert.equal(atEntity.intervals.resamples, 1000);
    assert.equal(report.crossPatch.summary.layers.length, TINY.lm!.layers);
    assert.ok(Array.isArray(report.recovery.patchedAcc), 'backbone → VLM patching per layer');
  });

  test("a recipe's kernels are part of it: 'builtin' trains every process on the built-in GEMM, bit for bit, records them, and sums unlike 'stock'", () => {
    const { trainingEngine } = require('../../src/train/teaching') as typeof import('../../src/train/teaching');
    assert.deepEqual(trainingEngine(), { backend: 'wasm', threads: 1, native: 'off' });
    assert.deepEqual(trainingEngine('builtin', 2), { backend: 'wasm', threads: 2, native: 'on', blasLibraries: ['builtin'] });
    assert.throws(() => trainingEngine('openblas' as never), /recipe.kernels: openblas is not a kernel set/);
    const train = (name: string, kernels: string, env: Record<string, string> = {}) => {
      const recipe = path.join(tmp, `${name}.json`);
      fs.writeFileSync(recipe, JSON.stringify({ ...TINY, kernels }));
      const out = path.join(tmp, name);
      const r = childProcess.spawnSync(process.execPath, ['--import', 'tsx', 'src/train/cli.ts', '--data', dataDir, '--run', `${out}-run`, '--out', out, '--recipe', recipe, '--seed', '5'], {
        encoding: 'utf8',
        cwd: path.resolve(__dirname, '..', '..'),
        env: { ...process.env, ...env },
      });
      assert.equal(r.status, 0, r.stderr.slice(-2000));
      const file = path.join(out, 'model.safetensors');
      return { stderr: r.stderr, bytes: fs.readFileSync(file), tensors: readHost(file), recorded: recordedRecipe(file)! };
    };
    const a = train('kernels-builtin-a', 'builtin');
    // The parent and both pretraining children start on the built-in GEMM, whatever BLAS the machine has.
    for (const who of ['^', '^\\[lm\\] ', '^\\[vision\\] ']) assert.match(a.stderr, new RegExp(`${who}backend wasm .*matMul: native \\(built-in GEMM`, 'm'), who);
    assert.match(a.recorded, /"kernels":"builtin"/);
    const b = train('kernels-builtin-b', 'builtin');
    assert.ok(a.bytes.equals(b.bytes), 'the same seed on the built-in kernels gives other bytes');
    // Its AVX-512 and AVX2 micro-kernels keep every sum's order: the same weights on either (a CPU without AVX-512
    // runs only the AVX2 one, and the shipped pair was trained on it).
    if (/ avx512f /.test(fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '')) {
      assert.match(a.stderr, /^backend wasm .*matMul: native \(built-in GEMM, AVX-512/m);
      const narrow = train('kernels-builtin-avx2', 'builtin', { HOPSCOPE_GEMM_ISA: 'avx2' });
      assert.match(narrow.stderr, /^backend wasm .*matMul: native \(built-in GEMM, AVX2\+FMA/m);
      assert.ok(a.bytes.equals(narrow.bytes), 'the AVX-512 and AVX2 kernels trained different weights');
    }
    // Where the built-in kernels cannot start (here: no addon in HOPSCOPE_NATIVE_DIR), the recipe is refused with the
    // reason, never trained on other kernels.
    const empty = fs.mkdtempSync(path.join(tmp, 'no-addon-'));
    const refused = childProcess.spawnSync(process.execPath, ['--import', 'tsx', 'src/train/cli.ts', '--data', dataDir, '--run', path.join(tmp, 'refused-run'), '--out', path.join(tmp, 'refused'), '--recipe', path.join(tmp, 'kernels-builtin-a.json')], {
      encoding: 'utf8',
      cwd: path.resolve(__dirname, '..', '..'),
      env: { ...process.env, HOPSCOPE_NATIVE_DIR: empty },
    });
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /the recipe's kernels \(builtin\) cannot start here: .*native addon is not built.*"kernels": "stock" trains here/);
    assert.equal(fs.existsSync(path.join(tmp, 'refused-run')), false, 'nothing trained');
    const s = train('kernels-stock', 'stock');
    assert.match(s.stderr, /^backend wasm .*matMul: stock \(turned off\)/m);
    assert.ok([...a.tensors].some(([k, v]) => !bytesOf(v).equals(bytesOf(s.tensors.get(k)!))), 'builtin and stock kernels gave the same weights: the kernel set was not switched');
  });

  test('in process, a recipe that names its kernels is refused on an engine that runs others (its metadata would say what did not run)', async () => {
    // This file's engine is initEngine({ threads: 2 }): the native matMul where it builds, so never 'stock'.
    await assert.rejects(
      trainTeachingModel({ seed: 5, dataDir, runDir: path.join(tmp, 'kernels-mismatch'), recipe: { ...TINY, kernels: 'stock' } }),
      /recipe.kernels is stock but the engine runs (builtin|a system BLAS|stock matMul with the fused ops).*trainingEngine\(recipe.kernels\)/,
    );
    assert.equal(fs.existsSync(path.join(tmp, 'kernels-mismatch')), false, 'nothing trained');
  });

  test('the training scripts print their options on --help and refuse an unknown option, without training anything', () => {
    const root = path.resolve(__dirname, '..', '..');
    const runDir = path.join(tmp, 'help-run');
    for (const script of ['src/train/cli.ts', 'src/train/contrast.ts', 'src/train/deadline.ts']) {
      const help = childProcess.spawnSync(process.execPath, ['--import', 'tsx', script, '--help', '--run', runDir], { encoding: 'utf8', cwd: root });
      assert.equal(help.status, 0, `${script} --help: ${help.stderr.slice(-1000)}`);
      assert.match(help.stdout, /^Usage: \w+ \[options\]/m, script);
      const bad = childProcess.spawnSync(process.execPath, ['--import', 'tsx', script, '--no-such-flag', '--run', runDir], { encoding: 'utf8', cwd: root });
      assert.notEqual(bad.status, 0, script);
      assert.match(bad.stderr, /unknown option '--no-such-flag'/, script);
    }
    // No --out: refused (no default folder to overwrite a shipped model in).
    const noOut = childProcess.spawnSync(process.execPath, ['--import', 'tsx', 'src/train/cli.ts', '--run', runDir], { encoding: 'utf8', cwd: root });
    assert.notEqual(noOut.status, 0);
    assert.match(noOut.stderr, /--out DIR is required/);
    // A user typing --help once started a full training run (session 14): nothing was written.
    assert.equal(fs.existsSync(runDir), false);
  });

  test('the saved folder reloads through loadModelFromDir with the in-memory logits, and matches the training forward', async () => {
    const out = path.join(tmp, 'model');
    const r = await trainTeachingModel({ seed: 5, dataDir, runDir: path.join(tmp, 'runE'), outDir: out, recipe: TINY });
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'preprocessor_config.json', 'backbone/config.json'])
      assert.ok(fs.existsSync(path.join(out, f)), f);
    const data = loadTeachingData(dataDir);
    const base = tf.memory().numTensors;
    const loaded = loadModelFromDir(out);
    const mem = inMemoryLlava(r.params, r.spec);
    const e = data.entities[2];
    const nTok = (r.spec.vit.image / r.spec.vit.patch) ** 2;
    const ids = promptIds(data, imagePrompt(data, data.templates.identification[e.type].query), nTok);
    const S = data.imageSize;
    const px = tf.tensor4d(pixelsOf(data, [viewRgb(data, e, data.testViews[0], true)]), [1, 3, S, S]);
    const f1 = loaded.forward({ inputIds: [ids], pixelValues: px });
    const f2 = mem.forward({ inputIds: [ids], pixelValues: px });
    const l1 = f1.logits!.dataSync() as Float32Array;
    const l2 = f2.logits!.dataSync() as Float32Array;
    assert.ok(Buffer.from(l1.buffer, l1.byteOffset, l1.byteLength).equals(Buffer.from(l2.buffer, l2.byteOffset, l2.byteLength)), 'reloaded logits differ');
    // The batched training forward computes the same function (up to float reassociation).
    const dev = toDevice(r.params);
    const l3 = tf.tidy(() => {
      const g = getter(dev);
      const feats = project(g, vitFeatures(g, r.spec.vit, px, r.spec.featureLayer));
      return lmForward(g, r.spec.lm, embedWithImages(g, r.spec.lm, [ids], data.imageTokenId, feats)).dataSync() as Float32Array;
    });
    let maxDiff = 0;
    for (let i = 0; i < l1.length; i++) maxDiff = Math.max(maxDiff, Math.abs(l1[i] - l3[i]));
    assert.ok(maxDiff < 1e-4, `training forward differs from inference by ${maxDiff}`);
    disposeParams(dev);
    f1.dispose();
    f2.dispose();
    px.dispose();
    loaded.dispose();
    mem.dispose();
    assert.equal(tf.memory().numTensors, base);
  });
});
