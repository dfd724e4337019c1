// Prompt templates per VLM family and the tokeniser-aware builder that records token spans.
export type { TemplateName, TemplateSpec, RenderOptions, RenderedPrompt } from './prompt/templates';
export { TEMPLATES, getTemplate, renderPrompt } from './prompt/templates';
export type {
  ImageLayout,
  ImageTokens,
  TokenSpan,
  ImageSpan,
  PromptSpans,
  BuiltPrompt,
  BuildOptions,
  PromptOptions,
  ImageTokenRole,
} from './prompt/build';
export { buildPrompt, buildPromptFromText, imageTokenRole } from './prompt/build';
