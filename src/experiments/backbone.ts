// The text-only backbone LLM of a VLM ("Too Late to Recall": the VLM is compared with the LLM it was
// built on). Where it comes from, in order: the caller's model (ctx.backbone), the spec's `backbone`
// folder, the VLM folder's `backbone/` subfolder or the folder its config.json names (`hopscope_backbone`,
// relative to the VLM folder: the teaching VLMs share one backbone at data/teaching/backbone). Its answers
// are decoded with its own tokenizer.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Model } from '../models/model';
import { loadModelWithAssets, modelAssets } from './assets';
import type { ExperimentContext } from './context';
import type { PromptSource } from './source';

export interface ResolvedBackbone {
  model: Model;
  /** Where it came from: 'ctx', the spec's folder, or the VLM's backbone/ subfolder. */
  from: string;
  /** Loaded here (the caller disposes it with `release`). */
  own: boolean;
  release(): void;
  /** For the result's warnings: e.g. a spec backbone other than the one the VLM's folder names. */
  warnings: string[];
}

/** The backbone folder a VLM folder carries or names, or null. */
export function backboneDirOf(vlmDir: string): string | null {
  const sub = path.join(vlmDir, 'backbone');
  if (fs.existsSync(path.join(sub, 'config.json'))) return sub;
  try {
    const named = (JSON.parse(fs.readFileSync(path.join(vlmDir, 'config.json'), 'utf8')) as { hopscope_backbone?: unknown }).hopscope_backbone;
    if (typeof named === 'string' && named) {
      const dir = path.resolve(vlmDir, named);
      if (fs.existsSync(path.join(dir, 'config.json'))) return dir;
    }
  } catch {
    // No readable config: the loader reports that; here it only means no named backbone.
  }
  return null;
}

export function resolveBackbone(model: Model, spec: { backbone?: string | null }, ctx: ExperimentContext): ResolvedBackbone | null {
  if (ctx.backbone) return { model: ctx.backbone, from: 'ctx', own: false, release: () => {}, warnings: [] };
  const vlmDir = modelAssets(model).dir;
  const own = vlmDir ? backboneDirOf(vlmDir) : null;
  const dir = spec.backbone ?? own;
  if (!dir) return null;
  // A VLM folder that names its backbone was built on that LLM: another one in the spec compares the VLM with an
  // LLM it was not built on (the same shapes load without complaint; e.g. a path left over from another model).
  const warnings =
    spec.backbone && own && path.resolve(spec.backbone) !== path.resolve(own)
      ? [`backbone ${spec.backbone} is not the one the model's folder names (${own}): the VLM is compared with an LLM it was not built on`]
      : [];
  const m = loadModelWithAssets(dir);
  return { model: m, from: dir, own: true, release: () => m.dispose(), warnings };
}

/** The source with the backbone's tokenizer for decoding (prompts still come from `backbonePrompt`). */
export function backboneSource(source: PromptSource, backbone: Model): PromptSource {
  const tok = modelAssets(backbone).tokenizer;
  if (!tok) return source;
  return { ...source, decode: (ids) => tok.decode(ids.filter((i) => i >= 0 && i < tok.vocabSize), { skipSpecialTokens: true }) };
}
