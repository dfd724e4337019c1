// Pixtral (LlavaForConditionalGeneration with a Pixtral tower): native-resolution images → PixtralVisionModel →
// feature layer → LLaVA's projector → one feature per [IMG] token of a Mistral decoder. The image tokens of one
// image are its patch grid row by row, each row closed by [IMG_BREAK] ([IMG_END] after the last), which are
// ordinary text tokens: the features fill the [IMG] slots in order, as HF's masked_scatter does.
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../../errors';
import { pixtralImageLayout, pixtralPatchOffsets, type PixtralImageLayout } from '../../io/processors/pixtral';
import { parsePixtralProcessorConfig, pixtralImageTokenIds, pixtralPreprocess, pixtralProcessorConfig } from '../../io/processors';
import { ConfigError } from '../../errors';
import type { ImagePrep, PrepAssets } from '../image-prep';
import { Decoder, decoderHookNames } from '../decoder';
import { decoderExpected, disposeDecoderWeights, loadDecoderWeights } from '../decoder-weights';
import { RunContext, type HookPointInfo } from '../hooks';
import { applyProjector, embedWithImageFeatures, loadProjector, projectorExpected, type ProjectorWeights } from '../llava/model';
import { ModelBase, type Embedded, type ModelInputs } from '../model';
import { checkWeights, type WeightSource } from '../weights';
import { parsePixtralConfig, type PixtralConfig } from './config';
import { PixtralVisionModel, disposePixtralVisionWeights, loadPixtralVisionWeights, pixtralVisionExpected, pixtralVisionHookNames } from './vision';

/** Where one image's tokens sit in a batch: row, first [IMG], extent (breaks included), grid layout, [IMG] positions. */
export interface PixtralImageSpan {
  image: number;
  row: number;
  start: number;
  /** rows * (cols + 1): from the first [IMG] through the [IMG_END]. */
  length: number;
  layout: PixtralImageLayout;
  /** Positions in the row of the image's [IMG] tokens, patch k of the grid (row-major) at [k]. */
  patchPositions: number[];
}

export class PixtralModel extends ModelBase {
  readonly family = 'pixtral';
  readonly kind = 'vlm' as const;
  override readonly imageTokenIndex: number;
  /** Absolute vision hidden-state indices read for features; the tower runs only up to the largest. */
  readonly featureIndices: number[];

  constructor(
    readonly config: PixtralConfig,
    decoder: Decoder,
    readonly vision: PixtralVisionModel,
    readonly projector: ProjectorWeights,
  ) {
    super(config.text, decoder);
    this.imageTokenIndex = config.imageTokenIndex;
    this.featureIndices = config.featureLayers.map((l) => (l < 0 ? config.vision.numLayers + 1 + l : l));
  }

  static load(src: WeightSource, raw: Record<string, unknown>): PixtralModel {
    const config = parsePixtralConfig(raw);
    const featureIndices = config.featureLayers.map((l) => (l < 0 ? config.vision.numLayers + 1 + l : l));
    const layersRun = Math.max(...featureIndices);
    const textHead = 'language_model.lm_head.weight';
    // Every tensor is checked before any is read: a mismatch reports all problems and allocates nothing.
    checkWeights(src, [
      ...pixtralVisionExpected(config.vision, 'vision_tower.', layersRun),
      ...projectorExpected(config.text.hiddenSize, config.vision.hiddenSize * featureIndices.length),
      ...decoderExpected(config.text, 'language_model.model.', textHead),
    ]);
    const vw = loadPixtralVisionWeights(src, config.vision, 'vision_tower.', layersRun);
    const projector = loadProjector(src);
    const dw = loadDecoderWeights(src, config.text, 'language_model.model.', textHead);
    return new PixtralModel(config, new Decoder(config.text, dw), new PixtralVisionModel(config.vision, vw), projector);
  }

  /** Pixtral's [INST] … [/INST] chat format (src/io/prompt/templates.ts). */
  override get defaultTemplate(): string {
    return 'pixtral';
  }

  /**
   * Native resolution; the prompt holds the image's patch rows of [IMG], each closed by [IMG_BREAK] ([IMG_END]
   * for the last), whose ids come from the tokenizer when the folder has one.
   */
  override imagePrep(assets: PrepAssets): ImagePrep {
    const v = this.config.vision;
    const cfg = assets.preprocessor ? parsePixtralProcessorConfig(assets.preprocessor) : pixtralProcessorConfig({ longestEdge: v.imageSize, patchSize: v.patchSize });
    if (cfg.patchSize.height !== v.patchSize || cfg.patchSize.width !== v.patchSize)
      throw new ConfigError(`preprocessor_config.json: patch_size ${cfg.patchSize.height}x${cfg.patchSize.width} differs from vision_config.patch_size ${v.patchSize}`);
    const tok = assets.tokenizer;
    const imageBreak = tok?.tokenToId('[IMG_BREAK]');
    const imageEnd = tok?.tokenToId('[IMG_END]');
    return {
      prepare: (img) => {
        const p = pixtralPreprocess(img, cfg);
        const layout = this.layoutFor(p.imageSize);
        const tokenIds =
          imageBreak !== undefined && imageEnd !== undefined ? pixtralImageTokenIds(layout, { image: this.imageTokenIndex, imageBreak, imageEnd }) : undefined;
        return { pixels: { data: p.pixelValues, shape: [1, ...p.shape], imageSize: p.imageSize }, numTokens: layout.numTokens, layout, tokenIds };
      },
    };
  }

  layoutFor(imageSize: readonly [number, number]): PixtralImageLayout {
    this.vision.gridOf(imageSize);
    return pixtralImageLayout(imageSize, this.config.vision.patchSize);
  }

  /** [IMG] tokens (= features) of an image of processed size [height, width]. */
  tokensFor(imageSize: readonly [number, number]): number {
    const l = this.layoutFor(imageSize);
    return l.rows * l.cols;
  }

  /**
   * Each image's grid in `inputIds`: images fill the rows in order; image k starts at the first unclaimed [IMG]
   * and must be `rows` runs of `cols` [IMG] tokens, each followed by one other token (its break or end).
   */
  imageSpans(inputIds: number[][], imageSizes: readonly (readonly [number, number])[]): PixtralImageSpan[] {
    const img = this.imageTokenIndex;
    const layouts = imageSizes.map((s) => this.layoutFor(s));
    const spans: PixtralImageSpan[] = [];
    let k = 0;
    for (const [row, ids] of inputIds.entries()) {
      let t = 0;
      while (t < ids.length) {
        if (ids[t] !== img) {
          t++;
          continue;
        }
        const l = layouts[k];
        if (!l) throw new InputError(`row ${row} has [IMG] tokens (id ${img}) at ${t} beyond the ${layouts.length} image(s) given`);
        const offsets = pixtralPatchOffsets(l);
        const bad = offsets.find((o) => ids[t + o] !== img);
        const badBreak = Array.from({ length: l.rows }, (_, r) => t + r * (l.cols + 1) + l.cols).find((p) => p >= ids.length || ids[p] === img);
        if (bad !== undefined || badBreak !== undefined)
          throw new InputError(
            `image ${k} (${l.imageSize.join('x')} px = ${l.rows} rows x ${l.cols} patches) should be ${l.rows} runs of ${l.cols} [IMG] tokens, ` +
              `each closed by [IMG_BREAK]/[IMG_END], from row ${row} token ${t}; ` +
              (bad !== undefined ? `token ${t + bad} is ${ids[t + bad]}` : `token ${badBreak} is ${ids[badBreak!] ?? 'past the end'}`) +
              ': expand each image with PixtralProcessor\'s layout (pixtralImageTokenIds)',
          );
        spans.push({ image: k, row, start: t, length: l.numTokens, layout: l, patchPositions: offsets.map((o) => t + o) });
        t += l.numTokens;
        k++;
      }
    }
    if (k < layouts.length) throw new InputError(`the prompt has [IMG] tokens for ${k} of the ${layouts.length} image(s)`);
    return spans;
  }

  hookPoints(): HookPointInfo[] {
    return [
      ...pixtralVisionHookNames(Math.max(...this.featureIndices)),
      { name: 'vision.features', axes: ['patch', 'd_vision'], part: 'vision' },
      { name: 'projector.out', axes: ['image_token', 'd_model'], part: 'projector' },
      ...decoderHookNames(this.text),
    ];
  }

  /**
   * pixel_values as [N, C, H, W] (zero-padded at the bottom/right when sizes differ) or [B, n, C, H, W]
   * (n same-size images per row), with each image's processed [height, width] (all H x W when omitted).
   */
  imagesOf(pixels: tf.Tensor, imageSizes?: readonly (readonly [number, number])[]): { pixels: tf.Tensor; sizes: [number, number][] } {
    const C = this.config.vision.numChannels;
    let px = pixels;
    if (px.rank === 5) px = px.reshape([-1, ...px.shape.slice(2)]);
    if (px.rank !== 4 || px.shape[1] !== C)
      throw new InputError(`Pixtral pixel_values must be [images, ${C}, H, W] or [rows, images, ${C}, H, W], got [${pixels.shape}]`);
    const [N, , H, W] = px.shape as number[];
    const sizes = imageSizes ? imageSizes.map((s) => [s[0], s[1]] as [number, number]) : Array.from({ length: N }, () => [H, W] as [number, number]);
    if (sizes.length !== N)
      throw new InputError(`pixel_values holds ${N} images but imageSizes has ${sizes.length}: give one processed [height, width] per image`);
    return { pixels: px, sizes };
  }

  /** Images → projected features [total patches, D] in prompt order (vision and projector hooks fire). */
  encodeImages(pixels: tf.Tensor, imageSizes?: readonly (readonly [number, number])[], ctx: RunContext = new RunContext()): tf.Tensor {
    const im = this.imagesOf(pixels, imageSizes);
    const states = this.vision.forward(im.pixels, im.sizes, Math.max(...this.featureIndices), ctx);
    const feats = ctx.point('vision.features', this.featureIndices.length === 1 ? states[this.featureIndices[0]] : tf.concat(this.featureIndices.map((i) => states[i]), -1));
    return ctx.point('projector.out', applyProjector(feats, this.projector, this.config.projectorAct));
  }

  protected embedInputs(inputs: ModelInputs, mask: number[][], ctx: RunContext): Embedded {
    let features: tf.Tensor | null = null;
    let detail = '';
    if (inputs.imageFeatures) features = inputs.imageFeatures.reshape([-1, this.dModel]);
    else if (inputs.pixelValues) {
      const { sizes } = this.imagesOf(inputs.pixelValues, inputs.imageSizes);
      detail = ` (${sizes.map((s) => `${s.join('x')} px → ${this.tokensFor(s)}`).join(', ')})`;
      const nImageTokens = inputs.inputIds.reduce((a, r) => a + r.filter((t) => t === this.imageTokenIndex).length, 0);
      // Same count but another layout would scatter patches into the wrong grid rows: check the geometry first.
      if (nImageTokens === sizes.reduce((a, s) => a + this.tokensFor(s), 0)) this.imageSpans(inputs.inputIds, sizes);
      features = this.encodeImages(inputs.pixelValues, inputs.imageSizes, ctx);
    }
    return embedWithImageFeatures(this.decoder, inputs, mask, this.imageTokenIndex, features, detail);
  }

  dispose(): void {
    disposeDecoderWeights(this.decoder.w);
    disposePixtralVisionWeights(this.vision.w);
    tf.dispose(Object.values(this.projector));
  }
}
