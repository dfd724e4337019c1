// Cutting a sweep into shards: jobs the scheduler would stack (same start layer, start position, donor
// reuse, prompt length and generation length: see runJobs) go into the same shard, so a worker still
// runs them as rows of one forward; a shard holds at most `size` patch jobs.
import { planJob } from '../experiments/plan';
import type { PatchJob } from '../experiments/scheduler';
import type { Model } from '../models/model';

export function shardsOf(model: Model, jobs: readonly PatchJob[], size: number, donorPrefix?: boolean): PatchJob[][] {
  const groups = new Map<string, PatchJob[]>();
  for (const job of jobs) {
    const p = planJob(model, job, { donorPrefix });
    const key = p.full ? 'full' : `${p.layer}/${p.from}/${p.donor ? 'donor' : 'own'}/${job.clean.batch.T}/${job.generate ?? 0}`;
    const g = groups.get(key);
    if (g) g.push(job);
    else groups.set(key, [job]);
  }
  const out: PatchJob[][] = [];
  for (const g of groups.values()) for (let i = 0; i < g.length; i += size) out.push(g.slice(i, i + size));
  return out;
}
