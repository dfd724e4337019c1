// Image processors per model family (HF-exact) and the per-image token layouts they imply.
export type { SizeSpec } from './processors/config';
export type { ClipProcessorConfig, GridImageLayout } from './processors/clip';
export {
  llava15ProcessorConfig,
  parseClipProcessorConfig,
  clipResize,
  clipGeometry,
  clipPreprocess,
  stackChw,
  clipImageLayout,
  gridLayoutTokens,
} from './processors/clip';
export type { Pinpoints, AnyresProcessorConfig, AnyresPixels, AnyresModelConfig, AnyresLayout } from './processors/anyres';
export {
  parsePinpoints,
  llavaNextProcessorConfig,
  parseAnyresProcessorConfig,
  selectBestResolution,
  patchOutputSize,
  llavaNextPreprocess,
  batchAnyres,
  parseAnyresModelConfig,
  anyresLayout,
} from './processors/anyres';
export type { Qwen2VLProcessorConfig, Qwen2VLPixels, QwenImageLayout } from './processors/qwen2vl';
export {
  qwen2vlProcessorConfig,
  parseQwen2VLProcessorConfig,
  roundHalfEven,
  smartResize,
  qwen2vlPatchify,
  qwen2vlPreprocess,
  batchQwen2VL,
  qwenImageLayout,
} from './processors/qwen2vl';
export type { PixtralProcessorConfig, PixtralPixels, PixtralImageLayout } from './processors/pixtral';
export {
  pixtralProcessorConfig,
  parsePixtralProcessorConfig,
  pixtralOutputSize,
  pixtralImageLayout,
  pixtralImageTokenIds,
  pixtralPatchOffsets,
  pixtralPreprocess,
  padImagesToBatch,
} from './processors/pixtral';
export type { MllamaProcessorConfig, MllamaPixels } from './processors/mllama';
export {
  crossAttentionTokenSpans,
  mllamaCrossAttentionMask,
  parseMllamaProcessorConfig,
  supportedAspectRatios,
  optimalTiledCanvas,
  sizeFitToCanvas,
  mllamaPreprocess,
} from './processors/mllama';
