// Chat templates of the supported VLM families, rendered to text with the character ranges of the
// question, assistant tag and answer prefix (so token spans can be located, never hard-coded).
import { InputError } from '../../errors';

export type TemplateName =
  | 'llava-1.5'
  | 'llava-1.5-hf'
  | 'chatml-yi-34b'
  | 'llama-3-more'
  | 'chatml-qwen2vl-hf'
  | 'vicuna-v1'
  | 'mistral-instruct'
  | 'chatml-qwen2vl'
  | 'chatml-yi'
  | 'llama-3'
  | 'pixtral'
  | 'plain';

export interface TemplateSpec {
  name: TemplateName;
  /** What the text carries per image feature slot; the prompt builder expands it to N tokens. */
  imageToken: string;
  /** Text before the user's content, given the system prompt. */
  head: (system: string) => string;
  defaultSystem: string;
  /** Text for one image inside the user turn (contains imageToken once). */
  imageBlock: string;
  /** Text between the question and the model's answer. */
  assistantTag: string;
  /** Inserted between assistantTag and a non-empty answer prefix. */
  answerJoin: string;
  /** What stands where the image blocks would be in a text-only prompt (default ''). */
  textBlock?: string;
  /** The assistant tag of a text-only prompt, when it differs (default assistantTag). */
  textAssistantTag?: string;
}

const VICUNA_SYSTEM =
  "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.";

// The PopVQA authors' renderings (github ido-co/vlm-modality-gap) are the defaults of their models;
// the HF model cards' variants keep their own names (-hf).
export const TEMPLATES: Readonly<Record<TemplateName, TemplateSpec>> = {
  // The authors' LLaVA-1.5 prompts (setup.py:105-106): 'USER: <image>\n{query}\nASSISTANT:' and, for
  // text, 'USER: \n{query}\nASSISTANT:'. Their template has no {prefix} slot, so get_prompt drops a prefix.
  'llava-1.5': {
    name: 'llava-1.5',
    imageToken: '<image>',
    head: (sys) => (sys ? `${sys} ` : '') + 'USER: ',
    defaultSystem: '',
    imageBlock: '<image>\n',
    textBlock: '\n',
    assistantTag: '\nASSISTANT:',
    answerJoin: ' ',
  },
  // llava-hf/llava-1.5-*-hf model cards: 'USER: <image>\n{q} ASSISTANT:'.
  'llava-1.5-hf': {
    name: 'llava-1.5-hf',
    imageToken: '<image>',
    head: (sys) => (sys ? `${sys} ` : '') + 'USER: ',
    defaultSystem: '',
    imageBlock: '<image>\n',
    assistantTag: ' ASSISTANT:',
    answerJoin: ' ',
  },
  // The authors' LLaVA-1.6-34B prompts (setup.py:84-85): ChatML with the system prompt
  // 'You are a helpful assistant. ' (trailing space), no newline between turns, '{prefix}' right after.
  'chatml-yi-34b': {
    name: 'chatml-yi-34b',
    imageToken: '<image>',
    head: (sys) => (sys ? `<|im_start|>system\n${sys}<|im_end|>` : '') + '<|im_start|>user\n',
    defaultSystem: 'You are a helpful assistant. ',
    imageBlock: '<image>\n',
    assistantTag: '<|im_end|><|im_start|>assistant\n',
    answerJoin: '',
  },
  // The authors' LLaVA-MORE prompts (setup_more.py:26-37): Llama-3 chat with their system prompt, the
  // assistant header not followed by a blank line. Their string starts with a literal '<|begin_of_text|>' and
  // LLaVA's tokenizer_image_token (LLaVA-MORE src/llava/mm_utils.py) keeps the tokenizer's own BOS in front
  // of it, so the authors' ids begin with BOS twice (Llama-3.1's tokenizer adds one); rendered here the same
  // way, the tokenizer's BOS then the literal. 'llama-3' is the single-BOS chat template.
  'llama-3-more': {
    name: 'llama-3-more',
    imageToken: '<image>',
    head: (sys) => '<|begin_of_text|>' + (sys ? `<|start_header_id|>system<|end_header_id|>\n\n${sys}<|eot_id|>` : '') + '<|start_header_id|>user<|end_header_id|>\n\n',
    defaultSystem:
      'You are a helpful language and vision assistant. You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.',
    imageBlock: '<image>\n',
    assistantTag: '<|eot_id|><|start_header_id|>assistant<|end_header_id|>',
    answerJoin: '',
  },
  // LLaVA conv_vicuna_v1 (LLaVA-1.6 Vicuna, original LLaVA-1.5 training).
  'vicuna-v1': {
    name: 'vicuna-v1',
    imageToken: '<image>',
    head: (sys) => (sys ? `${sys} ` : '') + 'USER: ',
    defaultSystem: VICUNA_SYSTEM,
    imageBlock: '<image>\n',
    assistantTag: ' ASSISTANT:',
    answerJoin: ' ',
  },
  // llava-hf/llava-v1.6-mistral-7b-hf (BOS comes from the tokenizer).
  'mistral-instruct': {
    name: 'mistral-instruct',
    imageToken: '<image>',
    head: (sys) => '[INST] ' + (sys ? `${sys}\n\n` : ''),
    defaultSystem: '',
    imageBlock: '<image>\n',
    assistantTag: ' [/INST]',
    answerJoin: ' ',
  },
  // mistral-community/pixtral-12b chat template (tekken: no spaces around the control tokens; BOS from the
  // tokenizer). `[IMG]` stands for the whole image: the builder writes its rows of [IMG] and [IMG_BREAK]/[IMG_END].
  pixtral: {
    name: 'pixtral',
    imageToken: '[IMG]',
    head: (sys) => '[INST]' + (sys ? `${sys}\n\n` : ''),
    defaultSystem: '',
    imageBlock: '[IMG]',
    assistantTag: '[/INST]',
    answerJoin: '',
  },
  // The authors' Qwen2-VL prompts (setup.py:132-133): the chat template's rendering, except that the
  // text prompt has a space before <|im_end|> ('{query} <|im_end|>').
  'chatml-qwen2vl': {
    name: 'chatml-qwen2vl',
    imageToken: '<|image_pad|>',
    head: (sys) => (sys ? `<|im_start|>system\n${sys}<|im_end|>\n` : '') + '<|im_start|>user\n',
    defaultSystem: 'You are a helpful assistant.',
    imageBlock: '<|vision_start|><|image_pad|><|vision_end|>',
    assistantTag: '<|im_end|>\n<|im_start|>assistant\n',
    textAssistantTag: ' <|im_end|>\n<|im_start|>assistant\n',
    answerJoin: '',
  },
  // Qwen2-VL-*-Instruct chat template (add_generation_prompt=True).
  'chatml-qwen2vl-hf': {
    name: 'chatml-qwen2vl-hf',
    imageToken: '<|image_pad|>',
    head: (sys) => (sys ? `<|im_start|>system\n${sys}<|im_end|>\n` : '') + '<|im_start|>user\n',
    defaultSystem: 'You are a helpful assistant.',
    imageBlock: '<|vision_start|><|image_pad|><|vision_end|>',
    assistantTag: '<|im_end|>\n<|im_start|>assistant\n',
    answerJoin: '',
  },
  // llava-hf/llava-v1.6-34b-hf (Nous-Hermes-2-Yi-34B ChatML, no newline between turns).
  'chatml-yi': {
    name: 'chatml-yi',
    imageToken: '<image>',
    head: (sys) => (sys ? `<|im_start|>system\n${sys}<|im_end|>` : '') + '<|im_start|>user\n',
    defaultSystem: 'Answer the questions.',
    imageBlock: '<image>\n',
    assistantTag: '<|im_end|><|im_start|>assistant\n',
    answerJoin: '',
  },
  // llava-hf/llama3-llava-next-8b-hf (<|begin_of_text|> comes from the tokenizer).
  'llama-3': {
    name: 'llama-3',
    imageToken: '<image>',
    head: (sys) => (sys ? `<|start_header_id|>system<|end_header_id|>\n\n${sys}<|eot_id|>` : '') + '<|start_header_id|>user<|end_header_id|>\n\n',
    defaultSystem: '',
    imageBlock: '<image>\n',
    assistantTag: '<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    answerJoin: '',
  },
  // No chat markup: images, question, answer prefix (base LMs and small teaching models).
  plain: {
    name: 'plain',
    imageToken: '<image>',
    head: () => '',
    defaultSystem: '',
    imageBlock: '<image>\n',
    assistantTag: '',
    answerJoin: ' ',
  },
};

export function getTemplate(name: string): TemplateSpec {
  if (!Object.prototype.hasOwnProperty.call(TEMPLATES, name))
    throw new InputError(`unknown prompt template "${name}"; known templates: ${Object.keys(TEMPLATES).join(', ')}`);
  return TEMPLATES[name as TemplateName];
}

export interface RenderOptions {
  template: TemplateName | string;
  question: string;
  /** Number of images (0 = text-only variant). */
  numImages?: number;
  /** Replaces the template's default system prompt; '' removes it. */
  system?: string;
  /** Text the assistant turn starts with (e.g. "The answer is"), appended after the assistant tag. */
  answerPrefix?: string;
}

/** Character ranges, half-open. */
export interface RenderedPrompt {
  text: string;
  template: TemplateName;
  imageToken: string;
  numImages: number;
  question: [number, number];
  assistant: [number, number];
  answerPrefix: [number, number] | null;
}

export function renderPrompt(opts: RenderOptions): RenderedPrompt {
  const t = getTemplate(opts.template);
  const n = opts.numImages ?? 0;
  if (!Number.isInteger(n) || n < 0) throw new InputError(`renderPrompt: numImages must be a non-negative integer, got ${n}`);
  if (typeof opts.question !== 'string') throw new InputError('renderPrompt: question must be a string');
  for (const [k, v] of [['question', opts.question], ['system', opts.system ?? ''], ['answerPrefix', opts.answerPrefix ?? '']] as const)
    if (v.includes(t.imageToken))
      throw new InputError(`renderPrompt: ${k} contains the image token "${t.imageToken}"; pass images with numImages instead`);
  let text = t.head(opts.system ?? t.defaultSystem) + (n > 0 ? t.imageBlock.repeat(n) : t.textBlock ?? '');
  const qStart = text.length;
  text += opts.question;
  const qEnd = text.length;
  text += n > 0 ? t.assistantTag : t.textAssistantTag ?? t.assistantTag;
  const aEnd = text.length;
  let answerPrefix: [number, number] | null = null;
  if (opts.answerPrefix) {
    text += t.answerJoin;
    const s = text.length;
    text += opts.answerPrefix;
    answerPrefix = [s, text.length];
  }
  return { text, template: t.name, imageToken: t.imageToken, numImages: n, question: [qStart, qEnd], assistant: [qEnd, aEnd], answerPrefix };
}
