// Spec validation: a JSON spec checked with ajv against its kind's schema (the registry says which file)
// before any compute; defaults are filled in, errors name the field path.
import * as path from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { SpecError } from '../errors';
import { BUILTIN_EXPERIMENTS, SCHEMA_DIR, experimentDefinition, schemaFile, type ExperimentKind } from './registry';
import type { SpecBase } from './spec';
import { readSchemaFile } from './spec-options';

/** The kinds the library ships, from the registry (src/experiments/registry.ts). */
export const EXPERIMENT_KINDS: readonly ExperimentKind[] = BUILTIN_EXPERIMENTS.map((d) => d.kind as ExperimentKind);
export { SCHEMA_DIR };

let ajv: Ajv | null = null;
const validators = new Map<string, ValidateFunction>();

function validatorFor(kind: string): ValidateFunction {
  let v = validators.get(kind);
  if (v) return v;
  if (!ajv) {
    ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
    ajv.addSchema(readSchemaFile(path.join(SCHEMA_DIR, 'common.json')), 'common.json');
    ajv.addSchema(readSchemaFile(path.join(SCHEMA_DIR, 'intervention.json')), 'intervention.json');
  }
  const schema = readSchemaFile(schemaFile(experimentDefinition(kind)));
  // A registered kind's schema keeps its own $id out of ajv's table: the kind is the cache key.
  const { $id: _id, ...body } = schema;
  v = ajv.compile(body);
  validators.set(kind, v);
  return v;
}

/** "/edges/1/from" → "edges[1].from" */
function fieldPath(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  return parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

function describeError(kind: string, e: ErrorObject, spec: unknown): SpecError {
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'required') {
    const f = fieldPath(e.instancePath, String(p.missingProperty));
    return new SpecError(`${kind} spec: field "${f}" is required`, f);
  }
  if (e.keyword === 'additionalProperties') {
    const f = fieldPath(e.instancePath, String(p.additionalProperty));
    const schema = validatorFor(kind).schema as { properties?: Record<string, unknown> };
    const known = e.instancePath === '' && schema.properties ? ` (fields: ${Object.keys(schema.properties).join(', ')})` : '';
    return new SpecError(`${kind} spec: "${f}" is not a field of this spec${known}`, f);
  }
  const f = fieldPath(e.instancePath) || '(spec)';
  const value = valueAt(spec, e.instancePath);
  const allowed = e.keyword === 'enum' ? ` (allowed: ${(p.allowedValues as unknown[]).map((x) => JSON.stringify(x)).join(', ')})` : '';
  const msg = e.keyword === 'oneOf' ? 'does not match any allowed form' : e.message ?? 'is invalid';
  return new SpecError(`${kind} spec: field "${f}" ${msg}${allowed}; got ${JSON.stringify(value)}`, f);
}

function valueAt(spec: unknown, instancePath: string): unknown {
  let value: unknown = spec;
  for (const part of instancePath.split('/').slice(1)) value = (value as Record<string, unknown> | undefined)?.[part];
  return value;
}

/**
 * With oneOf alternatives ajv reports every branch's failure; the useful one is the deepest error of the
 * branch whose shape matches the value (an object checked against the object form, not the names list).
 */
function mostRelevant(errors: ErrorObject[], spec: unknown): ErrorObject {
  const depth = (e: ErrorObject) => e.instancePath.split('/').length;
  const specific = errors.filter((e) => {
    if (e.keyword === 'oneOf' || e.keyword === 'anyOf') return false;
    const v = valueAt(spec, e.instancePath);
    if ((e.keyword === 'enum' || e.keyword === 'const') && typeof v === 'object' && v !== null) return false;
    if (e.keyword === 'type' && errors.some((o) => o !== e && o.instancePath.startsWith(e.instancePath) && o.keyword !== 'type' && o.keyword !== 'oneOf'))
      return false;
    return true;
  });
  const pool = specific.length ? specific : errors;
  return pool.reduce((best, e) => (depth(e) > depth(best) ? e : best), pool[0]);
}

/**
 * Validates a spec and returns a copy with every default filled in (the input is not modified).
 * Throws SpecError whose `path` names the offending field.
 */
export function validateSpec<T extends SpecBase = SpecBase>(raw: unknown): T {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new SpecError(`an experiment spec must be a JSON object like {"kind": "logit-lens", "version": 1}, got ${JSON.stringify(raw)}`);
  let spec: Record<string, unknown>;
  try {
    spec = JSON.parse(JSON.stringify(raw)) as Record<string, unknown>;
  } catch (e) {
    // A value nested thousands deep overflows the copy's stack (found by test/fuzz/spec.test.ts); cycles and
    // BigInts cannot be copied either. None is a spec: say so instead of a bare RangeError/TypeError.
    throw new SpecError(`an experiment spec must be plain JSON (not nested thousands deep, no cycles or BigInts): ${(e as Error).message}`);
  }
  const kind = experimentDefinition(spec.kind).kind;
  if (spec.version !== 1) throw new SpecError(`field "version" ${JSON.stringify(spec.version)} is not supported; use 1`, 'version');
  const v = validatorFor(kind);
  if (!v(spec)) throw describeError(kind, mostRelevant(v.errors!, spec), spec);
  return spec as unknown as T;
}

