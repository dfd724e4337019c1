// %load: a model from a HuggingFace folder (config.json + safetensors) or the built-in teaching model.
import { hookPointsOf } from '../library';
import { resolveData } from './experiment-runner';
import { type Magic, parseNameArg } from './registry';

export const load: Magic = {
  name: 'load',
  summary: 'Load a model (a HuggingFace folder or "teaching"); experiment magics use it until the next %load',
  define: (c) =>
    c
      .argument('<source>', 'model folder, or "teaching"')
      .option('--as <name>', 'also bind the model to this variable (it is always bound to _)', parseNameArg('--as'))
      .option('--data <dir>', 'also load a dataset folder (PopVQA layout) for the experiment magics'),
  async run({ opts, args }, ctx) {
    const lib = ctx.lib('%load');
    const source = String(args[0]);
    const model = await Promise.race([lib.loadModel(source), ctx.hardStop]);
    ctx.session.model = model;
    ctx.session.modelSource = source;
    if (typeof opts.data === 'string') await resolveData(ctx, lib, opts.data);
    await ctx.keep(model, opts.as as string | undefined);
    const family = (model as unknown as { family?: string }).family;
    const text =
      `loaded ${source}${family ? ` (${family})` : ''}: ${model.numLayers} layers, ${hookPointsOf(model).length} hook points; ` +
      `bound to _${opts.as ? ` and ${String(opts.as)}` : ''}`;
    return { value: model, show: true, bundle: { 'text/plain': text } };
  },
};
