// Host tensor maps to and from single safetensors files (F32, exact), for stage outputs in a run folder.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../io/safetensors';
import type { HostTensor } from './params';

export function writeHost(file: string, host: Map<string, HostTensor>, metadata?: Record<string, string>): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tensors: Record<string, TensorToWrite> = {};
  for (const [k, v] of host) tensors[k] = { dtype: 'F32', shape: v.shape, data: v.data };
  writeSafetensors(file, tensors, metadata);
}

export function readHost(file: string): Map<string, HostTensor> {
  const f = SafetensorsFile.open(file);
  try {
    const out = new Map<string, HostTensor>();
    for (const [n, e] of f.entries) out.set(n, { shape: [...e.shape], data: f.readF32(n) });
    return out;
  } finally {
    f.close();
  }
}

/** The recipe a weights file records (`hopscope_recipe`, written by teaching.ts recipeMetadata / backboneMetadata); undefined when it records none. */
export function recordedRecipe(file: string): string | undefined {
  const f = SafetensorsFile.open(file);
  try {
    return f.metadata.hopscope_recipe;
  } finally {
    f.close();
  }
}
