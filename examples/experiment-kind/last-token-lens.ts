// A worked example of an experiment kind (docs/adding-an-experiment.md), and the toy kind the registry's tests
// register: the top-k next tokens decoded from every layer's residual at the last position of each entity's
// identification prompt (a one-position logit lens). One definition object + one schema (last-token-lens.json).
import * as path from 'node:path';
import { resolveSelector } from '../../src/interventions/selectors';
import { batchesOf, makeBatch } from '../../src/experiments/batch';
import type { Row } from '../../src/experiments/checkpoint';
import { Progress, makeTable } from '../../src/experiments/context';
import { logitLensBatch } from '../../src/experiments/logit-lens';
import { defineExperiment } from '../../src/experiments/registry';
import { prepareSource } from '../../src/experiments/sources/dataset';
import { layersOf, type SpecBase } from '../../src/experiments/spec';
import { logitLensView } from '../../src/experiments/views';

/** The spec's fields; the schema (last-token-lens.json) is their single source of truth, checked against this. */
export interface LastTokenLensSpec extends SpecBase {
  kind: 'last-token-lens';
  layers: number[] | null;
  topK: number;
}

export const lastTokenLens = defineExperiment<LastTokenLensSpec>({
  kind: 'last-token-lens',
  schema: path.join(__dirname, 'last-token-lens.json'),
  summary: 'Top-k next tokens decoded from every layer at the last prompt position',
  explain: "Each layer's residual at the last position decoded through the final norm and unembedding: from which layer is the answer on top?",
  magic: { name: 'lasttokenlens' },
  demo: false,
  // Rows in the logit-lens shape, so the logit-lens view draws them (live too).
  view: { kind: 'logit-lens', build: logitLensView },
  async run(model, source, spec, ctx) {
    const progress = new Progress(ctx);
    const layers = layersOf(spec, model.numLayers);
    const entities = source.entities({ types: spec.types, limit: spec.limit, seed: spec.seed });
    await prepareSource(source, entities);
    const prompts = entities.flatMap((e) => source.identification(e) ?? []);
    const rows: Row[] = [];
    progress.start('last-token lens', prompts.length);
    for (const group of batchesOf(prompts, spec.batchSize)) {
      ctx.signal?.throwIfAborted();
      const batch = await makeBatch(model, source, group);
      const out = model.forward(batch.inputs, { cache: layers.map((l) => `lm.blocks.${l}.resid_post`) });
      try {
        const last = batch.rows.map((g) => resolveSelector({ kind: 'last' }, g).prompt);
        const cells = logitLensBatch(model, out.cache, layers, last, spec.topK, group.map(() => null));
        const batchRows = group.flatMap((c, b) =>
          cells[b].flatMap((cell) =>
            cell.tokens.map((t, rank) => ({
              prompt: c.id,
              entity: c.entity.key,
              layer: cell.layer,
              position: cell.position - batch.rows[b].offset,
              kind: 'text',
              inputText: 'last',
              rank,
              token: t,
              tokenText: source.decode([t]),
              prob: cell.probs[rank],
            })),
          ),
        );
        rows.push(...batchRows);
        ctx.onPartial?.(batchRows);
      } finally {
        out.dispose();
        batch.dispose();
      }
      progress.tick(group.length);
    }
    return { kind: spec.kind, spec, table: makeTable(rows), summary: { prompts: prompts.length, layers } };
  },
});
