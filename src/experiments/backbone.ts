// The text-only backbone LLM of a VLM ("Too Late to Recall": the VLM is compared with the LLM it was
// built on). Where it comes from, in order: the caller's model (ctx.backbone), the spec's `backbone`
// folder, the VLM folder's `backbone/` subfolder. Its answers are decoded with its own tokenizer.
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
}

export function resolveBackbone(model: Model, spec: { backbone?: string | null }, ctx: ExperimentContext): ResolvedBackbone | null {
  if (ctx.backbone) return { model: ctx.backbone, from: 'ctx', own: false, release: () => {} };
  let dir = spec.backbone ?? null;
  if (!dir) {
    const vlmDir = modelAssets(model).dir;
    const sub = vlmDir ? path.join(vlmDir, 'backbone') : null;
    if (sub && fs.existsSync(path.join(sub, 'config.json'))) dir = sub;
  }
  if (!dir) return null;
  const m = loadModelWithAssets(dir);
  return { model: m, from: dir, own: true, release: () => m.dispose() };
}

/** The source with the backbone's tokenizer for decoding (prompts still come from `backbonePrompt`). */
export function backboneSource(source: PromptSource, backbone: Model): PromptSource {
  const tok = modelAssets(backbone).tokenizer;
  if (!tok) return source;
  return { ...source, decode: (ids) => tok.decode(ids.filter((i) => i >= 0 && i < tok.vocabSize), { skipSpecialTokens: true }) };
}
