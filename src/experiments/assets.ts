// What an experiment needs besides the weights: the tokenizer, the prompt template and the image
// preprocessing of the model's family. Loaded next to the model and looked up by model object.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import type { ImageLayout } from '../io/prompt';
import {
  clipImageLayout,
  clipPreprocess,
  llava15ProcessorConfig,
  llavaNextPreprocess,
  llavaNextProcessorConfig,
  parseAnyresProcessorConfig,
  parseClipProcessorConfig,
  parseQwen2VLProcessorConfig,
  qwen2vlPreprocess,
  qwen2vlProcessorConfig,
  qwenImageLayout,
} from '../io/processors';
import type { RgbImage } from '../io/image';
import { loadTokenizer, type TextTokenizer } from '../io/tokenizer';
import { LlavaModel } from '../models/llava';
import { LlavaNextModel } from '../models/llava-next';
import { Qwen2VLModel } from '../models/qwen2-vl';
import { loadModelFromDir, type LoadOptions } from '../models/load';
import type { Model } from '../models/model';
import { isSiglip } from '../models/vit';

export interface ModelAssets {
  dir?: string;
  tokenizer?: TextTokenizer;
  /** Prompt template name (src/io/prompt/templates.ts). */
  template?: string;
  /** preprocessor_config.json, when the folder has one. */
  preprocessor?: Record<string, unknown>;
}

const ASSETS = new WeakMap<Model, ModelAssets>();

export function setModelAssets(model: Model, assets: ModelAssets): void {
  ASSETS.set(model, { ...ASSETS.get(model), ...assets });
}

export function modelAssets(model: Model): ModelAssets {
  return ASSETS.get(model) ?? {};
}

function readJsonIf(file: string): Record<string, unknown> | undefined {
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>) : undefined;
}

/** Loads a model folder with its tokenizer (when there is a tokenizer.json) and preprocessor config. */
export function loadModelWithAssets(dir: string, opts: LoadOptions = {}): Model {
  const model = loadModelFromDir(dir, opts);
  const assets: ModelAssets = { dir, preprocessor: readJsonIf(path.join(dir, 'preprocessor_config.json')) };
  if (fs.existsSync(path.join(dir, 'tokenizer.json'))) assets.tokenizer = loadTokenizer(dir);
  setModelAssets(model, assets);
  return model;
}

/** The default chat template of a family (the papers' prompt formats). */
export function defaultTemplate(model: Model): string {
  switch (model.family) {
    case 'llava':
      return 'llava-1.5';
    case 'llava_next':
      return 'mistral-instruct';
    case 'qwen2_vl':
      return 'chatml-qwen2vl';
    default:
      return 'plain';
  }
}

/** Pixels of one preprocessed image, with the per-image extras some families need. */
export interface PixelInput {
  data: Float32Array;
  /** Shape with a leading image axis of 1 ([1, C, H, W] for LLaVA). */
  shape: number[];
  imageSize?: [number, number];
  gridThw?: [number, number, number];
}

/** How a family turns an RGB image into pixels and how many prompt tokens it takes. */
export interface ImagePrep {
  prepare(img: RgbImage): { pixels: PixelInput; numTokens: number; layout: ImageLayout | null };
}

type PrepFactory = (model: Model, assets: ModelAssets) => ImagePrep;
const PREPS: Record<string, PrepFactory> = {
  llava: (model, assets) => {
    if (!(model instanceof LlavaModel)) throw new InputError('llava image preparation needs a LlavaModel');
    const v = model.config.vision;
    const cfg = assets.preprocessor ? parseClipProcessorConfig(assets.preprocessor) : llava15ProcessorConfig(v.imageSize);
    const layout = clipImageLayout(v.imageSize, v.patchSize, { strategy: model.config.strategy, hasCls: !isSiglip(v) });
    return {
      prepare(img) {
        const chw = clipPreprocess(img, cfg);
        return { pixels: { data: chw.data, shape: [1, chw.channels, chw.height, chw.width] }, numTokens: model.tokensPerImage, layout };
      },
    };
  },
  // LLaVA-NeXT anyres: base crop + tiles; the token count and layout depend on the image's size.
  llava_next: (model, assets) => {
    if (!(model instanceof LlavaNextModel)) throw new InputError('llava_next image preparation needs a LlavaNextModel');
    const cfg = assets.preprocessor ? parseAnyresProcessorConfig(assets.preprocessor) : llavaNextProcessorConfig(model.anyres.visionImageSize, model.anyres.gridPinpoints);
    return {
      prepare(img) {
        const p = llavaNextPreprocess(img, cfg);
        const layout = model.layoutFor(p.imageSize);
        return { pixels: { data: p.pixelValues, shape: [1, ...p.shape], imageSize: p.imageSize }, numTokens: layout.numTokens, layout };
      },
    };
  },
  // Qwen2-VL: dynamic resolution, flattened patches in merge-window order, one token per merged 2x2 cell.
  qwen2_vl: (model, assets) => {
    if (!(model instanceof Qwen2VLModel)) throw new InputError('qwen2_vl image preparation needs a Qwen2VLModel');
    const v = model.config.vision;
    const base = { patchSize: v.patchSize, temporalPatchSize: v.temporalPatchSize, mergeSize: v.spatialMergeSize };
    const cfg = assets.preprocessor ? { ...parseQwen2VLProcessorConfig(assets.preprocessor), ...base } : qwen2vlProcessorConfig(base);
    return {
      prepare(img) {
        const p = qwen2vlPreprocess(img, cfg);
        return { pixels: { data: p.pixelValues, shape: p.shape, gridThw: p.gridThw }, numTokens: p.numTokens, layout: qwenImageLayout(p.gridThw, cfg.mergeSize) };
      },
    };
  },
};

/** Families other than LLaVA-1.5 register their preprocessing here (LLaVA-NeXT anyres, Qwen2-VL patches). */
export function registerImagePrep(family: string, factory: PrepFactory): void {
  PREPS[family] = factory;
}

export function imagePrepFor(model: Model): ImagePrep {
  // Every experiment source places images as image-token spans in the residual stream; a cross-attention model
  // has none (docs/families.md), so refuse with that reason rather than a missing-preprocessor one.
  if (model.imageInput === 'cross-attention')
    throw new InputError(
      `model family "${model.family}" reads images through cross-attention layers, so there are no image positions for ` +
        'experiment prompts, selectors or freezing; run model.forward with pixelValues/aspectRatioIds/aspectRatioMask and ' +
        'use the hooks vision.cross_attention_states and lm.blocks.N.xattn_out, or RunOptions.crossAttnMask (see docs/families.md)',
    );
  const f = PREPS[model.family];
  if (!f) throw new InputError(`no image preprocessing registered for model family "${model.family}" (known: ${Object.keys(PREPS).join(', ')})`);
  return f(model, modelAssets(model));
}
