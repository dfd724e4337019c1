// Each built-in kind's TypeScript spec names the same fields as its JSON Schema (schemas/<kind>.json, the single
// source of truth): checked by tsc through SchemaKeysMatch; a drift fails the type check, not a run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type attribution from '../../schemas/attribution.json';
import type circuit from '../../schemas/circuit.json';
import type crossPatch from '../../schemas/cross-patch.json';
import type freeze from '../../schemas/freeze.json';
import type knockout from '../../schemas/knockout.json';
import type logitLens from '../../schemas/logit-lens.json';
import type probe from '../../schemas/probe.json';
import type recallGap from '../../schemas/recall-gap.json';
import type recovery from '../../schemas/recovery.json';
import type { AttributionSpec, CircuitSpec, CrossPatchSpec, FreezeExperimentSpec, KnockoutExperimentSpec, LogitLensSpec, ProbeSpec, RecallGapSpec, RecoverySpec } from '../../src/experiments';
import { BUILTIN_EXPERIMENTS } from '../../src/experiments';
import type { SchemaKeysMatch } from './schema-keys';

const checked: Record<string, true> = {
  'recall-gap': true satisfies SchemaKeysMatch<RecallGapSpec, typeof recallGap>,
  'cross-patch': true satisfies SchemaKeysMatch<CrossPatchSpec, typeof crossPatch>,
  freeze: true satisfies SchemaKeysMatch<FreezeExperimentSpec, typeof freeze>,
  knockout: true satisfies SchemaKeysMatch<KnockoutExperimentSpec, typeof knockout>,
  'logit-lens': true satisfies SchemaKeysMatch<LogitLensSpec, typeof logitLens>,
  probe: true satisfies SchemaKeysMatch<ProbeSpec, typeof probe>,
  attribution: true satisfies SchemaKeysMatch<AttributionSpec, typeof attribution>,
  recovery: true satisfies SchemaKeysMatch<RecoverySpec, typeof recovery>,
  circuit: true satisfies SchemaKeysMatch<CircuitSpec, typeof circuit>,
};

test('every built-in kind has its spec checked against its schema', () => {
  assert.deepEqual(Object.keys(checked).sort(), BUILTIN_EXPERIMENTS.map((d) => d.kind).sort());
});
