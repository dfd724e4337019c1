// Reading HF `preprocessor_config.json` fields (snake_case, ints or dicts) into typed options.
import { ConfigError } from '../../errors';
import type { ResampleFilter } from '../image/resize';

export type Json = Record<string, unknown>;

export function optNumber(cfg: Json, key: string, where: string): number | undefined {
  const v = cfg[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(`${where}: "${key}" must be a number, got ${JSON.stringify(v)}`);
  return v;
}

export function optPositiveInt(cfg: Json, key: string, where: string): number | undefined {
  const v = optNumber(cfg, key, where);
  if (v !== undefined && (!Number.isInteger(v) || v <= 0))
    throw new ConfigError(`${where}: "${key}" must be a positive integer, got ${v}`);
  return v;
}

export function optBool(cfg: Json, key: string, where: string): boolean | undefined {
  const v = cfg[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ConfigError(`${where}: "${key}" must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

export function optTriple(cfg: Json, key: string, where: string): readonly number[] | undefined {
  const v = cfg[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return [v, v, v];
  if (!Array.isArray(v) || v.length !== 3 || v.some((x) => typeof x !== 'number'))
    throw new ConfigError(`${where}: "${key}" must be a number or a list of 3 numbers, got ${JSON.stringify(v)}`);
  return v as number[];
}

/** PIL resample codes as HF stores them: 2 = BILINEAR, 3 = BICUBIC (the others are not ported). */
export function optResample(cfg: Json, key: string, where: string): ResampleFilter | undefined {
  const v = cfg[key];
  if (v === undefined || v === null) return undefined;
  if (v === 3) return 'bicubic';
  if (v === 2) return 'bilinear';
  throw new ConfigError(`${where}: "${key}" = ${JSON.stringify(v)} is not supported; only PIL BICUBIC (3) and BILINEAR (2) are ported`);
}

/** HF size dicts: an int, {shortest_edge}, or {height, width}. */
export type SizeSpec = { shortestEdge: number; maxSize?: number } | { height: number; width: number };

export function parseSize(v: unknown, key: string, where: string, defaultToSquare: boolean): SizeSpec | undefined {
  if (v === undefined || v === null) return undefined;
  const bad = () => new ConfigError(`${where}: "${key}" must be an int, {"shortest_edge"} or {"height", "width"}, got ${JSON.stringify(v)}`);
  const posInt = (x: unknown): number => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x <= 0) throw bad();
    return x;
  };
  if (typeof v === 'number') {
    const n = posInt(v);
    return defaultToSquare ? { height: n, width: n } : { shortestEdge: n };
  }
  if (typeof v !== 'object' || Array.isArray(v)) throw bad();
  const o = v as Json;
  if (o.shortest_edge !== undefined) {
    const s: SizeSpec = { shortestEdge: posInt(o.shortest_edge) };
    if (o.longest_edge !== undefined && o.longest_edge !== null) s.maxSize = posInt(o.longest_edge);
    return s;
  }
  if (o.height !== undefined && o.width !== undefined) return { height: posInt(o.height), width: posInt(o.width) };
  throw bad();
}
