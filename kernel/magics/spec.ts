// %%spec: run an experiment from a JSON spec in the cell body (the format runExperiment and the CLI take).
import type { ExperimentSpec } from '../library';
import { addRunOptions, runOptionsOf } from './common-options';
import { runSpec } from './experiment-runner';
import { type Magic, UsageError } from './registry';

export const spec: Magic = {
  name: 'spec',
  cell: true,
  summary: 'Run the experiment described by the JSON spec in the cell body ({"kind": ..., "version": 1, ...})',
  define: (c) => addRunOptions(c),
  async run({ opts }, ctx, body) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body ?? '');
    } catch (e) {
      throw new UsageError(`%%spec: the cell body is not JSON: ${(e as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new UsageError('%%spec: the cell body must be a JSON object like {"kind": "logit-lens", "version": 1}');
    }
    return runSpec(parsed as ExperimentSpec, runOptionsOf(opts), ctx, '%%spec');
  },
};
