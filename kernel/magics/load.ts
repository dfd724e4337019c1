// %load: a model from a HuggingFace folder (config.json + safetensors) or the built-in teaching model.
import * as path from 'node:path';
import { isTeachingModel, TEACHING_DATA_DIR, TEACHING_MODELS } from '../../src/data/teaching-models';
import { ensureEngine, hookPointsOf } from '../library';
import { resolveData } from './experiment-runner';
import { type Magic, parseNameArg } from './registry';

/**
 * The data the teaching models were trained on (data/teaching/README.md; `hopscope demo` pairs them the same way,
 * src/cli/demo.ts): `%load teaching` (any name of TEACHING_MODELS) brings it along, so the README's
 * `%crosspatch` runs without `--data`.
 */
export const TEACHING_DATA = TEACHING_DATA_DIR;

export const load: Magic = {
  name: 'load',
  summary: `Load a model (a HuggingFace folder or a teaching model: ${Object.keys(TEACHING_MODELS).join(', ')}, which bring their toyworld data); experiment magics use it until the next %load`,
  binds: 'Model',
  define: (c) =>
    c
      .argument('<source>', `model folder, or ${Object.keys(TEACHING_MODELS).join(' | ')}`)
      .option('--as <name>', 'also bind the model to this variable (it is always bound to _)', parseNameArg('--as'))
      .option('--data <dir>', 'also load a dataset folder (PopVQA layout) for the experiment magics (default for "teaching": data/toyworld)'),
  async run({ opts, args }, ctx) {
    const lib = ctx.lib('%load');
    const source = String(args[0]);
    await ensureEngine(lib);
    const model = await Promise.race([lib.loadModel(source), ctx.hardStop]);
    ctx.session.model = model;
    ctx.session.modelSource = source;
    ctx.session.modelName = typeof opts.as === 'string' ? opts.as : null;
    const dataDir = typeof opts.data === 'string' ? opts.data : isTeachingModel(source) ? TEACHING_DATA : undefined;
    if (dataDir) await resolveData(ctx, lib, dataDir);
    await ctx.keep(model, opts.as as string | undefined, load.binds);
    const family = (model as unknown as { family?: string }).family;
    const data = dataDir ? `; data ${path.relative(process.cwd(), path.resolve(dataDir)) || dataDir}` : '';
    const text =
      `loaded ${source}${family ? ` (${family})` : ''}: ${model.numLayers} layers, ${hookPointsOf(model).length} hook points${data}; ` +
      `bound to _${opts.as ? ` and ${String(opts.as)}` : ''}`;
    return { value: model, show: true, bundle: { 'text/plain': text } };
  },
};
