// What an experiment needs besides the weights: the tokenizer, the prompt template and the image
// preprocessing of the model's family. Loaded next to the model and looked up by model object.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, InputError } from '../errors';
import type { ImageLayout } from '../io/prompt';
import {
  clipImageLayout,
  clipPreprocess,
  llava15ProcessorConfig,
  llavaNextPreprocess,
  llavaNextProcessorConfig,
  parseAnyresProcessorConfig,
  parseClipProcessorConfig,
  parsePixtralProcessorConfig,
  parseQwen2VLProcessorConfig,
  pixtralImageTokenIds,
  pixtralPreprocess,
  pixtralProcessorConfig,
  qwen2vlPreprocess,
  qwen2vlProcessorConfig,
  qwenImageLayout,
} from '../io/processors';
import type { RgbImage } from '../io/image';
import { loadTokenizer, type TextTokenizer } from '../io/tokenizer';
import { LlavaModel } from '../models/llava';
import { LlavaNextModel } from '../models/llava-next';
import { PixtralModel } from '../models/pixtral/model';
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

/**
 * The family's default template when the checkpoint does not say: the PopVQA authors' renderings
 * (github ido-co/vlm-modality-gap setup.py:84-85, 105-106, 132-133). LLaVA-NeXT's default is the paper's
 * NeXT model, LLaVA-1.6-34B (ChatML with the authors' system prompt).
 */
export function defaultTemplate(model: Model): string {
  switch (model.family) {
    case 'llava':
      return 'llava-1.5';
    case 'llava_next':
      return 'chatml-yi-34b';
    case 'qwen2_vl':
      return 'chatml-qwen2vl';
    case 'pixtral':
      return 'pixtral';
    default:
      return 'plain';
  }
}

/** Markers of a chat format, most specific first, with the template the authors render it as. */
function templateFromMarkers(has: (marker: string) => boolean, family: string): string | null {
  if (has('<|vision_start|>')) return 'chatml-qwen2vl';
  if (has('<|im_start|>')) return 'chatml-yi-34b';
  // Llama-3 chat on a LLaVA-1.5-shaped model is LLaVA-MORE (setup_more.py:26-37).
  if (has('<|start_header_id|>')) return family === 'llava' ? 'llama-3-more' : 'llama-3';
  if (has('[INST]')) return 'mistral-instruct';
  if (has('USER:')) return 'llava-1.5';
  return null;
}

function chatTemplateText(dir: string): string | null {
  const parts: string[] = [];
  for (const f of ['tokenizer_config.json', 'chat_template.json', 'processor_config.json']) {
    const j = readJsonIf(path.join(dir, f));
    const t = j?.chat_template;
    if (typeof t === 'string') parts.push(t);
    else if (Array.isArray(t)) for (const x of t) if (typeof (x as { template?: unknown })?.template === 'string') parts.push((x as { template: string }).template);
  }
  const jinja = path.join(dir, 'chat_template.jinja');
  if (fs.existsSync(jinja)) parts.push(fs.readFileSync(jinja, 'utf8'));
  return parts.length ? parts.join('\n') : null;
}

/**
 * The template a model's prompts are rendered with, and where that came from: one set on the model
 * (setModelAssets), else what the checkpoint's chat template says (tokenizer_config.json, chat_template.json,
 * processor_config.json, chat_template.jinja), else the tokenizer's special tokens, else the family default.
 */
export function templateFor(model: Model): { template: string; from: 'assets' | 'chat_template' | 'tokenizer' | 'family' } {
  const a = modelAssets(model);
  if (a.template) return { template: a.template, from: 'assets' };
  const chat = a.dir ? chatTemplateText(a.dir) : null;
  const fromChat = chat ? templateFromMarkers((m) => chat.includes(m), model.family) : null;
  if (fromChat) return { template: fromChat, from: 'chat_template' };
  const tok = a.tokenizer;
  const fromTok = tok ? templateFromMarkers((m) => m !== 'USER:' && tok.isAddedToken(m), model.family) : null;
  if (fromTok) return { template: fromTok, from: 'tokenizer' };
  return { template: defaultTemplate(model), from: 'family' };
}

/** Pixels of one preprocessed image, with the per-image extras some families need. */
export interface PixelInput {
  data: Float32Array;
  /** Shape with a leading image axis of 1 ([1, C, H, W] for LLaVA). */
  shape: number[];
  /** LLaVA-NeXT: the original [height, width]; Pixtral: the processed one (images of a batch are padded to the largest). */
  imageSize?: [number, number];
  gridThw?: [number, number, number];
}

/** How a family turns an RGB image into pixels and how many prompt tokens it takes. */
export interface ImagePrep {
  /** `tokenIds`: the image's prompt tokens when they are not `numTokens` image tokens (Pixtral's row breaks). */
  prepare(img: RgbImage): { pixels: PixelInput; numTokens: number; layout: ImageLayout | null; tokenIds?: number[] };
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
  // Pixtral: native resolution; the prompt holds the image's patch rows of [IMG], each closed by [IMG_BREAK]
  // ([IMG_END] for the last), whose ids come from the tokenizer when the folder has one.
  pixtral: (model, assets) => {
    if (!(model instanceof PixtralModel)) throw new InputError('pixtral image preparation needs a PixtralModel');
    const v = model.config.vision;
    const cfg = assets.preprocessor ? parsePixtralProcessorConfig(assets.preprocessor) : pixtralProcessorConfig({ longestEdge: v.imageSize, patchSize: v.patchSize });
    if (cfg.patchSize.height !== v.patchSize || cfg.patchSize.width !== v.patchSize)
      throw new ConfigError(`preprocessor_config.json: patch_size ${cfg.patchSize.height}x${cfg.patchSize.width} differs from vision_config.patch_size ${v.patchSize}`);
    const tok = assets.tokenizer;
    const imageBreak = tok?.tokenToId('[IMG_BREAK]');
    const imageEnd = tok?.tokenToId('[IMG_END]');
    return {
      prepare(img) {
        const p = pixtralPreprocess(img, cfg);
        const layout = model.layoutFor(p.imageSize);
        const tokenIds =
          imageBreak !== undefined && imageEnd !== undefined ? pixtralImageTokenIds(layout, { image: model.imageTokenIndex, imageBreak, imageEnd }) : undefined;
        return { pixels: { data: p.pixelValues, shape: [1, ...p.shape], imageSize: p.imageSize }, numTokens: layout.numTokens, layout, tokenIds };
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
