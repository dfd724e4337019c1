// LLaVA-NeXT / LLaVA-1.6 (LlavaNextForConditionalGeneration, "anyres"): every image is a base crop (the whole
// image squashed) plus a grid of tiles; all crops go through LLaVA's tower and projector, then
// `pack_image_features` lays them out as the base crop's g×g features followed by the tile feature map
// unpadded to the image's aspect, each kept row ending in the learned `image_newline`.
// The token bookkeeping (best pinpoint, grid, unpadding) is the processor's `anyresLayout`, so the model and
// the prompt builder can never disagree on where a token comes from.
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, InputError } from '../../errors';
import {
  anyresLayout,
  llavaNextPreprocess,
  llavaNextProcessorConfig,
  parseAnyresModelConfig,
  parseAnyresProcessorConfig,
  type AnyresLayout,
  type AnyresModelConfig,
} from '../../io/processors';
import type { ImagePrep, PrepAssets } from '../image-prep';
import { RunContext, type HookPointInfo } from '../hooks';
import { LlavaModel, scatterImageFeatures } from '../llava/model';
import { toInt32, type Embedded, type ModelInputs } from '../model';
import { positionsFromMask } from '../decoder';
import { checkWeights, readTensor, type WeightSource } from '../weights';

/** Where one image's tokens sit in a batch: row, first token, count, and the layout of those tokens. */
export interface AnyresImageSpan {
  image: number;
  row: number;
  start: number;
  length: number;
  layout: AnyresLayout;
}

export class LlavaNextModel extends LlavaModel {
  override readonly family: string = 'llava_next';
  readonly imageNewline: tf.Tensor;
  readonly anyres: AnyresModelConfig;

  constructor(base: LlavaModel, imageNewline: tf.Tensor, anyres: AnyresModelConfig) {
    super(base.config, base.decoder, base.vision, base.projector);
    this.imageNewline = imageNewline;
    this.anyres = anyres;
  }

  static override load(src: WeightSource, raw: Record<string, unknown>): LlavaNextModel {
    const anyres = parseAnyresModelConfig(raw);
    for (const [h, w] of anyres.gridPinpoints)
      if (h % anyres.visionImageSize !== 0 || w % anyres.visionImageSize !== 0)
        throw new ConfigError(
          `config.json: image_grid_pinpoints entry [${h}, ${w}] is not a multiple of vision_config.image_size ${anyres.visionImageSize} ` +
            `(the tiles would not form a grid)`,
        );
    const D = (raw.text_config as Record<string, unknown> | undefined)?.hidden_size;
    if (typeof D === 'number') checkWeights(src, [{ name: 'image_newline', shape: [D] }]);
    const base = LlavaModel.load(src, raw);
    try {
      if (base.config.featureLayers.length !== 1 || base.config.strategy !== 'default')
        throw new ConfigError('config.json: LLaVA-NeXT packs one vision_feature_layer with strategy "default"');
      return new LlavaNextModel(base, readTensor(src, 'image_newline'), anyres);
    } catch (e) {
      base.dispose();
      throw e;
    }
  }

  /** Token layout of an image of original size [height, width] (HF `image_sizes` order). */
  /** The paper's NeXT model is LLaVA-1.6-34B: ChatML with the authors' system prompt (setup.py:105-106). */
  override get defaultTemplate(): string {
    return 'chatml-yi-34b';
  }

  /** Anyres: base crop + tiles; the token count and layout depend on the image's size. */
  override imagePrep(assets: PrepAssets): ImagePrep {
    const cfg = assets.preprocessor ? parseAnyresProcessorConfig(assets.preprocessor) : llavaNextProcessorConfig(this.anyres.visionImageSize, this.anyres.gridPinpoints);
    return {
      prepare: (img) => {
        const p = llavaNextPreprocess(img, cfg);
        const layout = this.layoutFor(p.imageSize);
        return { pixels: { data: p.pixelValues, shape: [1, ...p.shape], imageSize: p.imageSize }, numTokens: layout.numTokens, layout };
      },
    };
  }

  layoutFor(imageSize: readonly [number, number]): AnyresLayout {
    return anyresLayout(imageSize, this.anyres);
  }

  /** Image tokens per image, as the processor expands `<image>`. */
  tokensFor(imageSize: readonly [number, number]): number {
    return this.layoutFor(imageSize).numTokens;
  }

  /** Where each image's tokens are in `inputIds` (images fill image-token slots in row-major order). */
  imageSpans(inputIds: number[][], imageSizes: readonly (readonly [number, number])[]): AnyresImageSpan[] {
    const layouts = imageSizes.map((s) => this.layoutFor(s));
    const spans: AnyresImageSpan[] = [];
    let k = 0;
    let left = layouts[0]?.numTokens ?? 0;
    let prev = { row: -1, t: -1 };
    for (const [row, ids] of inputIds.entries())
      for (const [t, id] of ids.entries()) {
        if (id !== this.imageTokenIndex) continue;
        if (k >= layouts.length) throw new InputError(`the prompt has more image tokens than the ${layouts.length} image(s) give`);
        if (left === layouts[k].numTokens) spans.push({ image: k, row, start: t, length: left, layout: layouts[k] });
        else if (row !== prev.row || t !== prev.t + 1)
          throw new InputError(`image ${k}'s ${layouts[k].numTokens} tokens are not one contiguous run (break at row ${row}, token ${t})`);
        prev = { row, t };
        if (--left === 0 && ++k < layouts.length) left = layouts[k].numTokens;
      }
    if (k < layouts.length) throw new InputError(`the prompt has too few image tokens for the ${layouts.length} image(s) (image ${k} is incomplete)`);
    return spans;
  }

  override hookPoints(): HookPointInfo[] {
    // The tower runs on crops (base + tiles of every image), not on images.
    const base = super.hookPoints().map((p) => (p.axes[0] === 'image' ? { ...p, axes: ['crop', ...p.axes.slice(1)] } : p));
    const at = base.findIndex((p) => p.name === 'projector.out') + 1;
    base.splice(at, 0, { name: 'projector.packed', axes: ['image_token', 'd_model'], part: 'projector' });
    return base;
  }

  /**
   * pixel_values [images, maxCrops, C, H, W] (zero-padded crops ignored) or the crops concatenated
   * [sumCrops, C, H, W] → packed features [image tokens, D] in prompt order.
   */
  encodeAnyres(pixels: tf.Tensor, imageSizes: readonly (readonly [number, number])[], ctx: RunContext = new RunContext()): tf.Tensor {
    const layouts = imageSizes.map((s) => this.layoutFor(s));
    const crops = layouts.map((l) => l.gridRows * l.gridCols + 1);
    let flat: tf.Tensor;
    if (pixels.rank === 5) {
      const [n, maxCrops] = pixels.shape as number[];
      if (n !== layouts.length)
        throw new InputError(`pixel_values has ${n} images but imageSizes has ${layouts.length}: give one [height, width] per image`);
      crops.forEach((c, k) => {
        if (c > maxCrops)
          throw new InputError(
            `image ${k} of size ${imageSizes[k].join('x')} needs ${c} crops (base + ${layouts[k].gridRows}x${layouts[k].gridCols} tiles) ` +
              `but pixel_values holds ${maxCrops} per image: were they made with other image_grid_pinpoints?`,
          );
      });
      const rest = pixels.shape.slice(2) as number[];
      flat = tf.concat(crops.map((c, k) => pixels.slice([k, 0, 0, 0, 0], [1, c, ...rest]).reshape([c, ...rest])), 0);
    } else if (pixels.rank === 4) {
      const total = crops.reduce((a, b) => a + b, 0);
      if (pixels.shape[0] !== total)
        throw new InputError(`pixel_values has ${pixels.shape[0]} crops but the ${layouts.length} image(s) need ${total} (${crops.join(' + ')})`);
      flat = pixels;
    } else throw new InputError(`LLaVA-NeXT pixel_values must be [images, crops, C, H, W] or [crops, C, H, W], got [${pixels.shape}]`);
    const feats = this.encodeImages(flat, ctx); // [sumCrops, g², D]
    const parts: tf.Tensor[] = [];
    let c0 = 0;
    layouts.forEach((l, k) => {
      parts.push(this.pack(feats, c0, l));
      c0 += crops[k];
    });
    return ctx.point('projector.packed', parts.length === 1 ? parts[0] : tf.concat(parts, 0));
  }

  /** HF pack_image_features for one image whose crops start at `c0` in `feats` [crops, g², D]. */
  private pack(feats: tf.Tensor, c0: number, l: AnyresLayout): tf.Tensor {
    const g = l.featureGrid;
    const D = this.dModel;
    const base = feats.slice([c0, 0, 0], [1, g * g, D]).reshape([g * g, D]);
    const { gridRows: gr, gridCols: gc } = l;
    const full = feats
      .slice([c0 + 1, 0, 0], [gr * gc, g * g, D])
      .reshape([gr, gc, g, g, D])
      .transpose([0, 2, 1, 3, 4])
      .reshape([gr * g, gc * g, D]);
    const kept = full.slice([l.keptRows[0], l.keptCols[0], 0], [l.unpaddedRows, l.unpaddedCols, D]);
    const newline = tf.broadcastTo(this.imageNewline.reshape([1, 1, D]), [l.unpaddedRows, 1, D]);
    const body = tf.concat([kept, newline], 1).reshape([l.unpaddedRows * (l.unpaddedCols + 1), D]);
    return tf.concat([base, body], 0);
  }

  protected override embedInputs(inputs: ModelInputs, mask: number[][], ctx: RunContext): Embedded {
    const ids = inputs.inputIds;
    const img = this.imageTokenIndex;
    const nImageTokens = ids.reduce((a, r) => a + r.filter((t) => t === img).length, 0);
    let features: tf.Tensor | null = null;
    let expected = '';
    if (inputs.imageFeatures) features = inputs.imageFeatures.reshape([-1, this.dModel]);
    else if (inputs.pixelValues) {
      if (!inputs.imageSizes)
        throw new InputError('LLaVA-NeXT needs imageSizes (original [height, width] per image) with pixelValues');
      const per = inputs.imageSizes.map((s) => this.tokensFor(s));
      expected = ` (${per.join(' + ')} for image sizes ${inputs.imageSizes.map((s) => s.join('x')).join(', ')})`;
      if (per.reduce((a, b) => a + b, 0) !== nImageTokens)
        throw new InputError(
          `the prompt has ${nImageTokens} image tokens (id ${img}) but the images give ${per.reduce((a, b) => a + b, 0)} features${expected}: ` +
            `expand each <image> to its layout's token count (anyresLayout(...).numTokens)`,
        );
      features = this.encodeAnyres(inputs.pixelValues, inputs.imageSizes, ctx);
    }
    const nFeat = features ? features.shape[0] : 0;
    if (nFeat !== nImageTokens)
      throw new InputError(
        `the prompt has ${nImageTokens} image tokens (id ${img}) but the images give ${nFeat} features` +
          (features ? expected : ' (no pixel_values given)'),
      );
    const textIds = ids.map((r) => r.map((t) => (t === img ? 0 : t)));
    let embeds = this.decoder.embed(textIds);
    if (features) embeds = scatterImageFeatures(embeds, ids, img, features);
    const positions = inputs.positionIds ? toInt32(inputs.positionIds) : positionsFromMask(mask);
    return { embeds, positions };
  }

  override dispose(): void {
    super.dispose();
    this.imageNewline.dispose();
  }
}
