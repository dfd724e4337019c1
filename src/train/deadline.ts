// The recall deadline of a text LM ("Too Late to Recall": an entity that resolves after the backbone's early
// recall layers is not recalled). For pairs of entities A, B of one type with equally long names, run B's
// question and, from block L on, write A's own residuals into the name positions (cross-patching on text).
// The share of answers that are A's, against L, says how late the entity may appear and still be recalled:
// the budget any VLM on this backbone has for hop 1. At L = 0 the patched run is A's run; at the final norm
// only the name positions change, which the last position no longer reads.
//   node --import tsx src/train/deadline.ts --model data/teaching/backbone [--data data/toyworld] [--form question|name-first|span] [--every 5]
import * as tf from '@tensorflow/tfjs-core';
import { Command, Option } from 'commander';
import { initEngine, shutdownEngine } from '../engine/backend';
import { loadModelWithAssets, modelAssets } from '../experiments';
import type { Model } from '../models/model';
import { imagePrompt, loadTeachingData, questionFor, spanPromptIds, type TeachingData, type WorldEntity } from './data';

export interface DeadlineOptions {
  /**
   * 'question': the text question naming the entity; 'name-first': the text twin of the image prompt; 'span':
   * its span twin (the name right-aligned in the image's positions after `<unk>` fillers, data.ts spanPromptIds).
   */
  form: 'question' | 'name-first' | 'span';
  /** Image positions of the span form (16 for the teaching VLMs). */
  span?: number;
  /** Every n-th entity is a candidate A (seedless and reproducible). */
  every: number;
  maxNewTokens: number;
}

export interface DeadlineRow {
  /** Block from which A's name states are written (numLayers = at the final norm). */
  block: number;
  /** Answers containing A's fact, and B's. */
  a: number;
  b: number;
}

export interface DeadlineResult {
  pairs: number;
  rows: DeadlineRow[];
  /** Generated token ids per pair: A's own run, B's own run, and the patched run per block. */
  tokens: { a: number[]; b: number[]; patched: number[][] }[];
}

export function recallDeadline(model: Model, data: TeachingData, o: DeadlineOptions): DeadlineResult {
  const tok = modelAssets(model).tokenizer;
  if (!tok) throw new Error('recallDeadline: the model has no tokenizer');
  const L = model.numLayers;
  const es = data.entities.filter((_, i) => i % o.every === 0);
  const nameLen = (e: WorldEntity) => tok.encode(e.subject, { addSpecialTokens: false }).length;
  const promptIds = (e: WorldEntity, rel: string) =>
    o.form === 'span'
      ? spanPromptIds(data, e, questionFor(data, e, rel, true), o.span ?? 16)
      : tok.encode(
          o.form === 'name-first'
            ? imagePrompt(data, questionFor(data, e, rel, true)).replace(data.templates.promptTemplate.imageToken, e.subject)
            : data.templates.promptTemplate.text.replace('{query}', questionFor(data, e, rel, false)),
        );
  const rows: DeadlineRow[] = Array.from({ length: L + 1 }, (_, block) => ({ block, a: 0, b: 0 }));
  const tokens: DeadlineResult['tokens'] = [];
  const gen = (ids: number[], hooks: Record<string, (v: tf.Tensor) => tf.Tensor> = {}) =>
    model.generate({ inputIds: [ids] }, { maxNewTokens: o.maxNewTokens, run: { hooks } }).newTokens[0];
  for (const a of es) {
    const rel = a.heldoutRelations[0] ?? Object.keys(a.facts)[0];
    const b = es.find((x) => x !== a && x.type === a.type && nameLen(x) === nameLen(a) && x.facts[rel]?.[0] !== undefined && x.facts[rel][0] !== a.facts[rel][0]);
    if (!b) continue;
    const idsA = promptIds(a, rel);
    const idsB = promptIds(b, rel);
    if (idsA.length !== idsB.length) continue;
    const span = idsA.map((_, i) => i).filter((i) => idsA[i] !== idsB[i]);
    const t = { a: gen(idsA), b: gen(idsB), patched: [] as number[][] };
    for (let l = 0; l <= L; l++) {
      const hook = l < L ? `lm.blocks.${l}.resid_pre` : 'lm.final_norm';
      const run = model.forward({ inputIds: [idsA] }, { cache: [hook] });
      const clean = tf.keep(run.cache.get(hook)!.clone());
      run.dispose();
      // Prefill only (the decode steps see one position): the name positions take A's states.
      const patch = (v: tf.Tensor) => {
        if ((v.shape[1] as number) < idsA.length) return v;
        return tf.tidy(() => {
          const keep = tf.tensor(idsA.map((_, p) => (span.includes(p) ? 0 : 1)), [1, idsA.length, 1]);
          return tf.add(tf.mul(v, keep), tf.mul(clean, tf.sub(1, keep)));
        });
      };
      const out = gen(idsB, { [hook]: patch });
      clean.dispose();
      t.patched.push(out);
      const text = tok.decode(out, { skipSpecialTokens: true });
      if (text.includes(a.facts[rel][0])) rows[l].a++;
      if (text.includes(b.facts[rel][0])) rows[l].b++;
    }
    tokens.push(t);
  }
  return { pairs: tokens.length, rows, tokens };
}

async function main(): Promise<void> {
  // commander, as the hopscope CLI: `--help` prints the options and an unknown flag is an error.
  const o = new Command('deadline')
    .description("a text LM's recall deadline: from which block on an entity written into the name positions is still recalled")
    .option('--model <dir>', 'the LM folder', 'data/teaching/backbone')
    .option('--data <dir>', 'the toyworld data', 'data/toyworld')
    .addOption(new Option('--form <form>', 'the prompt form').choices(['question', 'name-first', 'span']).default('question'))
    .option('--every <n>', 'every n-th pair', '5')
    .parse()
    .opts<{ model: string; data: string; form: DeadlineOptions['form']; every: string }>();
  const every = Number(o.every);
  if (!Number.isInteger(every) || every < 1) throw new Error(`--every ${o.every}: expected a positive integer`);
  await initEngine({ threads: 1 });
  const model = loadModelWithAssets(o.model);
  const form = o.form;
  const r = recallDeadline(model, loadTeachingData(o.data), { form, every, maxNewTokens: 5 });
  console.log(`${form}: ${r.pairs} pairs; answers that are A's (B's) when A's name states are written from block L on`);
  for (const row of r.rows) console.log(`  L=${row.block}${row.block === model.numLayers ? ' (final norm)' : ''}: A ${row.a}/${r.pairs}, B ${row.b}/${r.pairs}`);
  model.dispose();
  shutdownEngine();
}

if (require.main === module)
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
