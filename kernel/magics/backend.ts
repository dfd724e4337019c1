// %backend: which TensorFlow.js backend runs, or switch to another.
import { loadEngine } from '../library';
import { type Magic, UsageError, parseNameArg } from './registry';

export const backend: Magic = {
  name: 'backend',
  summary: 'Show the compute backend, or switch: %backend wasm | cpu | tensorflow | tensorflow-gpu | auto',
  binds: 'EngineInfo',
  define: (c) =>
    c.argument('[name]', 'backend to start').option('--as <name>', 'also bind the engine info to this variable', parseNameArg('--as')),
  async run({ opts, args }, ctx) {
    const engine = loadEngine();
    const name = args[0] as string | undefined;
    const allowed = ['auto', ...(engine.BACKEND_ORDER ?? [])];
    if (name !== undefined && engine.BACKEND_ORDER && !allowed.includes(name)) {
      throw new UsageError(`%backend: ${JSON.stringify(name)} is not a backend; use one of ${allowed.join(', ')}`);
    }
    const info = await engine.initEngine(name !== undefined ? { backend: name } : {});
    await ctx.keep(info, opts.as as string | undefined, backend.binds);
    return { value: info, show: true, bundle: { 'text/plain': engine.describeEngine(info) } };
  },
};
