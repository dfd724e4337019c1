// Qwen2-VL (Qwen2VLForConditionalGeneration, transformers 4.45): the vision tower (./vision.ts), and a Qwen2
// decoder whose RoPE has three position streams (M-RoPE: temporal, height, width) that hopscope computes itself
// from the prompt and the image grids, exactly like HF `get_rope_index` (./rope-index.ts). Config: ./config.ts.
// Hook names follow the other families: `vision.embed` (patch embedding), `vision.blocks.{i}.*`,
// `vision.features` (last block output, the merger's input) and `projector.out` (the merger's output: Qwen2-VL's
// projector IS the merger). Vision values are [patches, d] (images of different sizes cannot stack).
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../../errors';
import { parseQwen2VLProcessorConfig, qwen2vlPreprocess, qwen2vlProcessorConfig, qwenImageLayout, type QwenImageLayout } from '../../io/processors';
import type { ImagePrep, PrepAssets } from '../image-prep';
import { Decoder, decoderHookNames } from '../decoder';
import { disposeDecoderWeights, loadDecoderWeights } from '../decoder-weights';
import { RunContext, type HookPointInfo } from '../hooks';
import { scatterImageFeatures } from '../llava/model';
import { ModelBase, type Embedded, type ModelInputs } from '../model';
import type { WeightSource } from '../weights';
import { parseQwen2VLConfig, type Qwen2VLConfig } from './config';
import { qwen2VLRopeIndex, type RopeIndex, type RopeTokens } from './rope-index';
import { loadVisionWeights, Qwen2VisionTower } from './vision';

export interface QwenImageSpan {
  image: number;
  row: number;
  start: number;
  length: number;
  layout: QwenImageLayout;
}

export class Qwen2VLModel extends ModelBase {
  /** Qwen2-VL's ChatML with vision markers (PopVQA authors' setup.py:132-133). */
  override get defaultTemplate(): string {
    return 'chatml-qwen2vl';
  }

  /** Dynamic resolution, flattened patches in merge-window order, one token per merged 2x2 cell. */
  override imagePrep(assets: PrepAssets): ImagePrep {
    const v = this.config.vision;
    const base = { patchSize: v.patchSize, temporalPatchSize: v.temporalPatchSize, mergeSize: v.spatialMergeSize };
    const cfg = assets.preprocessor ? { ...parseQwen2VLProcessorConfig(assets.preprocessor), ...base } : qwen2vlProcessorConfig(base);
    return {
      prepare: (img) => {
        const p = qwen2vlPreprocess(img, cfg);
        return { pixels: { data: p.pixelValues, shape: p.shape, gridThw: p.gridThw }, numTokens: p.numTokens, layout: qwenImageLayout(p.gridThw, cfg.mergeSize) };
      },
    };
  }

  readonly family: string = 'qwen2_vl';
  readonly kind = 'vlm' as const;
  override readonly imageTokenIndex: number;

  constructor(
    readonly config: Qwen2VLConfig,
    decoder: Decoder,
    readonly vision: Qwen2VisionTower,
  ) {
    super(config.text, decoder);
    this.imageTokenIndex = config.imageTokenId;
  }

  static load(src: WeightSource, raw: Record<string, unknown>): Qwen2VLModel {
    const config = parseQwen2VLConfig(raw);
    const vw = loadVisionWeights(src, config.vision);
    const vision = new Qwen2VisionTower(config.vision, vw);
    try {
      const dw = loadDecoderWeights(src, config.text, 'model.', 'lm_head.weight');
      return new Qwen2VLModel(config, new Decoder(config.text, dw), vision);
    } catch (e) {
      vision.dispose();
      throw e;
    }
  }

  private get ropeTokens(): RopeTokens {
    const c = this.config;
    return {
      imageTokenId: c.imageTokenId,
      videoTokenId: c.videoTokenId,
      visionStartTokenId: c.visionStartTokenId,
      spatialMergeSize: c.vision.spatialMergeSize,
    };
  }

  /** M-RoPE position ids and decode deltas for a prompt (HF get_rope_index). */
  ropeIndex(inputs: Pick<ModelInputs, 'inputIds' | 'attentionMask' | 'imageGridThw'>): RopeIndex {
    return qwen2VLRopeIndex(inputs.inputIds, inputs.attentionMask, inputs.imageGridThw, this.ropeTokens);
  }

  /** Image tokens of an image with patch grid [t, h, w]. */
  tokensFor(gridThw: readonly [number, number, number]): number {
    const l = qwenImageLayout(gridThw, this.config.vision.spatialMergeSize);
    return l.t * l.h * l.w;
  }

  /** Where each image's tokens are in `inputIds`, with the merged grid they come from (row-major). */
  imageSpans(inputIds: number[][], grids: readonly (readonly [number, number, number])[]): QwenImageSpan[] {
    const spans: QwenImageSpan[] = [];
    let k = 0;
    for (const [row, ids] of inputIds.entries()) {
      let t = 0;
      while (t < ids.length) {
        if (ids[t] !== this.imageTokenIndex) {
          t++;
          continue;
        }
        let left = ids.length - t;
        while (left > 0 && k < grids.length) {
          const layout = qwenImageLayout(grids[k], this.config.vision.spatialMergeSize);
          const n = layout.t * layout.h * layout.w;
          if (ids.slice(t, t + n).some((x) => x !== this.imageTokenIndex) || t + n > ids.length)
            throw new InputError(`row ${row}: image ${k} needs ${n} consecutive image tokens from token ${t}`);
          spans.push({ image: k++, row, start: t, length: n, layout });
          t += n;
          left = ids[t] === this.imageTokenIndex ? ids.length - t : 0;
        }
        if (left > 0) throw new InputError(`the prompt has more image tokens than the ${grids.length} image grid(s) cover`);
      }
    }
    if (k < grids.length) throw new InputError(`the prompt has image tokens for ${k} of the ${grids.length} image grids`);
    return spans;
  }

  hookPoints(): HookPointInfo[] {
    const out: HookPointInfo[] = [{ name: 'vision.embed', axes: ['patch', 'd_vision'], part: 'vision' }];
    for (let i = 0; i < this.config.vision.depth; i++)
      for (const k of ['resid_pre', 'attn_out', 'mlp_out', 'resid_post'])
        out.push({ name: `vision.blocks.${i}.${k}`, axes: ['patch', 'd_vision'], part: 'vision', layer: i });
    out.push(
      { name: 'vision.features', axes: ['patch', 'd_vision'], part: 'vision' },
      { name: 'projector.out', axes: ['image_token', 'd_model'], part: 'projector' },
      ...decoderHookNames(this.text),
    );
    return out;
  }

  /** Flattened patches + grids → merged image tokens [tokens, D] (vision and projector hooks fire). */
  encodeImages(pixels: tf.Tensor, grids: readonly (readonly [number, number, number])[], ctx: RunContext = new RunContext()): tf.Tensor {
    return this.vision.forward(pixels, grids, ctx);
  }

  private positionsFor(inputs: ModelInputs, mask: number[][]): { positions: Int32Array[][]; decodeDelta: number[] } {
    if (!inputs.positionIds) {
      const hasImageTokens = inputs.inputIds.some((r) => r.includes(this.imageTokenIndex));
      if (hasImageTokens && !inputs.imageGridThw)
        throw new InputError('the prompt has image tokens: give imageGridThw (patch grid per image) so M-RoPE positions can be computed');
      const r = qwen2VLRopeIndex(inputs.inputIds, mask, inputs.imageGridThw, this.ropeTokens);
      return { positions: r.positions, decodeDelta: r.decodeDelta };
    }
    const p = inputs.positionIds;
    const B = inputs.inputIds.length;
    const T = inputs.inputIds[0].length;
    const three = (Array.isArray(p[0][0]) ? (p as number[][][]) : [0, 1, 2].map(() => p as number[][])).map((s) => s.map((r) => Int32Array.from(r)));
    if (three.length !== 3 || three.some((s) => s.length !== B || s.some((r) => r.length !== T)))
      throw new InputError(`Qwen2-VL positionIds must be [3][${B}][${T}] (t/h/w streams) or [${B}][${T}]`);
    const decodeDelta = mask.map((row, b) => {
      let max = -Infinity;
      let real = 0;
      row.forEach((v, t) => {
        if (!v) return;
        real++;
        for (const s of three) max = Math.max(max, s[b][t]);
      });
      return max + 1 - real;
    });
    return { positions: three, decodeDelta };
  }

  protected override positionsOnly(inputs: ModelInputs, mask: number[][]): Embedded {
    const { positions, decodeDelta } = this.positionsFor(inputs, mask);
    return { embeds: tf.zeros([0]), positions, decodeDelta };
  }

  protected embedInputs(inputs: ModelInputs, mask: number[][], ctx: RunContext): Embedded {
    const ids = inputs.inputIds;
    const img = this.imageTokenIndex;
    const nImageTokens = ids.reduce((a, r) => a + r.filter((t) => t === img).length, 0);
    const { positions, decodeDelta } = this.positionsFor(inputs, mask);
    let features: tf.Tensor | null = null;
    if (inputs.imageFeatures) features = inputs.imageFeatures.reshape([-1, this.dModel]);
    else if (inputs.pixelValues) {
      if (!inputs.imageGridThw) throw new InputError('Qwen2-VL needs imageGridThw ([t, h, w] patch grid per image) with pixelValues');
      const want = inputs.imageGridThw.reduce((a, g) => a + this.tokensFor(g), 0);
      if (want !== nImageTokens)
        throw new InputError(
          `the prompt has ${nImageTokens} image tokens (id ${img}) but the image grids give ${want} ` +
            `(${inputs.imageGridThw.map((g) => `${g.join('x')} → ${this.tokensFor(g)}`).join(', ')})`,
        );
      features = this.encodeImages(inputs.pixelValues, inputs.imageGridThw, ctx);
    }
    const nFeat = features ? features.shape[0] : 0;
    if (nFeat !== nImageTokens)
      throw new InputError(
        `the prompt has ${nImageTokens} image tokens (id ${img}) but ${nFeat} image features were given` + (features ? '' : ' (no pixel_values)'),
      );
    const textIds = ids.map((r) => r.map((t) => (t === img ? 0 : t)));
    let embeds = this.decoder.embed(textIds);
    if (features) embeds = scatterImageFeatures(embeds, ids, img, features);
    return { embeds, positions, decodeDelta };
  }

  dispose(): void {
    disposeDecoderWeights(this.decoder.w);
    this.vision.dispose();
  }
}
