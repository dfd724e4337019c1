// Where an intervened run can start without changing its result: the first block any intervention
// touches (earlier blocks equal the clean run) and the first prompt position any intervention can
// affect (earlier positions keep their clean keys and values in every layer). A patch that writes a
// donor's states over a contiguous run of positions whose preceding tokens are the donor's own (the
// image of the same prompt template) makes those positions equal the donor's clean states in every
// later layer too: the run then reuses the donor's keys/values and computes only the positions after.
import { resolveSelector, toSelector, type RowGeometry } from '../interventions/selectors';
import { startLayerOf } from '../interventions/compile';
import type { InterventionSpec, PatchSpec, SourceRun } from '../interventions/types';
import type { Model } from '../models/model';
import { cleanStateOf, type CleanState } from './clean-state';

/** One intervened run of one prompt (a row of a clean state). */
export interface PatchJob {
  /** Unique key (checkpoint identity). */
  key: string;
  clean: CleanState;
  row: number;
  /** Interventions written for this prompt alone; source rows default to `row`. */
  interventions: InterventionSpec[];
  /** Other runs' states by name (the clean state is always available as "clean"). */
  sources?: Record<string, SourceRun>;
  /** Greedy tokens to generate (0: one forward, last-position logits only). */
  generate?: number;
  /** Free data for the caller's row builder. */
  meta?: Record<string, unknown>;
}

export interface Plan {
  /** First block run. */
  layer: number;
  /** First prompt position computed (padded coordinates); earlier ones come from `prefix`. */
  from: number;
  /** Keys/values of positions < from at blocks >= layer: the job's own clean run, or a donor's. */
  donor: { clean: CleanState; row: number; patch: number } | null;
  /** Run the job naively (embedding/vision hooks, or a family without start-at-position support). */
  full: boolean;
}

/** The earliest prompt position (padded coordinates) a spec can change; Infinity when it only touches generated tokens. */
function firstAffected(spec: InterventionSpec, row: RowGeometry): number {
  const sel = spec.kind === 'knockout' ? spec.to : spec.at;
  const r = resolveSelector(toSelector(sel), row);
  return r.prompt.length ? r.prompt[0] : Infinity;
}

function isResidPreAt(spec: PatchSpec): number | null {
  if (spec.hook) {
    const m = /^lm\.blocks\.(\d+)\.resid_pre$/.exec(spec.hook);
    return m && (!spec.source.hook || spec.source.hook === spec.hook) ? Number(m[1]) : null;
  }
  if (spec.layers?.length !== 1 || (spec.site ?? 'resid_pre') !== 'resid_pre') return null;
  if (spec.source.hook || (spec.source.site && spec.source.site !== 'resid_pre')) return null;
  return spec.layers[0];
}

/**
 * The donor-continuation case: one patch at the input of block l over contiguous positions [a, m] from a
 * cached clean run, where the donor's tokens before its patched span equal the target's (same relative
 * positions, same count of real tokens): at blocks >= l, positions <= m then hold exactly the donor's states.
 */
function donorPlan(job: PatchJob, row: RowGeometry, T: number): Plan['donor'] & { layer: number; m: number } | null {
  if (job.interventions.length !== 1 || job.interventions[0].kind !== 'patch') return null;
  const spec = job.interventions[0];
  const layer = isResidPreAt(spec);
  if (layer === null) return null;
  const src = job.sources?.[spec.source.cache] ?? (spec.source.cache === 'clean' ? job.clean.source : undefined);
  const donor = src ? cleanStateOf(src) : undefined;
  if (!donor || !donor.kv) return null;
  const dRow = spec.source.row ?? job.row;
  const dGeom = donor.batch.rows[dRow];
  if (!dGeom) return null;
  const P = resolveSelector(toSelector(spec.at), row).prompt;
  const Q = resolveSelector(toSelector(spec.source.at ?? spec.at), dGeom).prompt;
  if (P.length === 0 || P.length !== Q.length) return null;
  const a = P[0];
  const m = P[P.length - 1];
  if (m - a + 1 !== P.length || m >= T - 1) return null;
  // Same relative positions in both prompts, and the same tokens before the span.
  const rel = (p: number, g: RowGeometry) => p - g.offset;
  if (P.some((p, i) => rel(p, row) !== rel(Q[i], dGeom))) return null;
  const tIds = job.clean.batch.inputs.inputIds[job.row];
  const dIds = donor.batch.inputs.inputIds[dRow];
  for (let p = row.offset; p < a; p++) if (tIds[p] !== dIds[p - row.offset + dGeom.offset]) return null;
  return { clean: donor, row: dRow, patch: 0, layer, m };
}

export function planJob(model: Model, job: PatchJob, opts: { donorPrefix?: boolean } = {}): Plan {
  const s = startLayerOf(job.interventions, model.numLayers);
  const row = job.clean.batch.rows[job.row];
  const T = job.clean.batch.T;
  if (s.full) return { layer: 0, from: 0, donor: null, full: true };
  if (!job.clean.kv) return { layer: s.layer, from: 0, donor: null, full: Boolean(job.generate) };
  const d = opts.donorPrefix === false ? null : donorPlan(job, row, T);
  if (d) return { layer: d.layer, from: d.m + 1, donor: { clean: d.clean, row: d.row, patch: d.patch }, full: false };
  let from = T - 1;
  for (const spec of job.interventions) from = Math.min(from, firstAffected(spec, row));
  // Padding before the first real token carries nothing; start no earlier than needed but never inside padding.
  return { layer: s.layer, from: Math.max(0, Math.min(from, T - 1)), donor: null, full: false };
}
