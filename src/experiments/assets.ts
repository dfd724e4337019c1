// What an experiment needs besides the weights: the tokenizer, the prompt template and the image
// preprocessing of the model's family. Loaded next to the model and looked up by model object.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import { loadTokenizer, type TextTokenizer } from '../io/tokenizer';
import type { ImagePrep } from '../models/image-prep';
import { loadModelFromDir, type LoadOptions } from '../models/load';
import type { Model } from '../models/model';

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

/** The family's default template when the checkpoint does not say (the model's own, `Model.defaultTemplate`). */
export function defaultTemplate(model: Model): string {
  return model.defaultTemplate;
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

export type { PixelInput, ImagePrep } from '../models/image-prep';

/** How the model prepares images (its family's contract, `Model.imagePrep`), with the folder's preprocessor and tokenizer. */
export function imagePrepFor(model: Model): ImagePrep {
  // Every experiment source places images as image-token spans in the residual stream; a cross-attention model
  // has none (docs/families.md), so refuse with that reason rather than a missing-preprocessor one.
  if (model.imageInput === 'cross-attention')
    throw new InputError(
      `model family "${model.family}" reads images through cross-attention layers, so there are no image positions for ` +
        'experiment prompts, selectors or freezing; run model.forward with pixelValues/aspectRatioIds/aspectRatioMask and ' +
        'use the hooks vision.cross_attention_states and lm.blocks.N.xattn_out, or RunOptions.crossAttnMask (see docs/families.md)',
    );
  const prep = model.imagePrep(modelAssets(model));
  if (!prep) throw new InputError(`model family "${model.family}" takes no images (a text-only model: ask the text question, or load its VLM)`);
  return prep;
}
