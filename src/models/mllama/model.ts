// Llama-3.2-Vision (MllamaForConditionalGeneration): the tiled vision encoder → a linear projector to
// cross-attention states → a Llama-3.1 decoder in which some layers are gated cross-attention layers. The image is
// never in the residual stream (imageInput 'cross-attention'): the shared Decoder runs the self-attention layers
// and hands the cross-attention layers to this family through its CrossLayers seam.
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, InputError } from '../../errors';
import { mllamaCrossAttentionMask } from '../../io/processors';
import { Decoder, positionsFromMask } from '../decoder';
import { decoderExpected, disposeDecoderWeights, loadDecoderWeights } from '../decoder-weights';
import { RunContext, decoderHookPoints, type HookPointInfo } from '../hooks';
import { linear } from '../layers';
import { ModelBase, toInt32, type Embedded, type ImageInput, type ModelInputs } from '../model';
import { memoryPlanOf } from '../streaming';
import { checkWeights, readTensor, type WeightSource } from '../weights';
import { parseMllamaConfig, patchesPerTile, type MllamaConfig } from './config';
import { CrossAttentionRun, crossLayerExpected, crossLayerHookPoints, disposeCrossLayer, loadCrossLayer, type CrossLayerWeights } from './cross-attention';
import { MllamaVisionTower, disposeMllamaVisionWeights, loadMllamaVisionWeights, mllamaVisionExpected, mllamaVisionHookNames } from './vision';

const TEXT = 'language_model.model.';
const HEAD = 'language_model.lm_head.weight';

export class MllamaModel extends ModelBase {
  readonly family = 'mllama';
  readonly kind = 'vlm' as const;
  override readonly imageTokenIndex: number;

  constructor(
    readonly config: MllamaConfig,
    decoder: Decoder,
    readonly vision: MllamaVisionTower,
    readonly projector: { w: tf.Tensor; b: tf.Tensor },
    readonly crossLayers: ReadonlyMap<number, CrossLayerWeights>,
  ) {
    super(config.text, decoder);
    this.imageTokenIndex = config.imageTokenIndex;
  }

  override get imageInput(): ImageInput {
    return 'cross-attention';
  }

  /** HF appends 8 rows to the embedding (vocab_size + 8): <|image|> = vocab_size is a real input id. */
  protected override get inputVocabSize(): number {
    return this.vocabSize + 8;
  }

  static load(src: WeightSource, raw: Record<string, unknown>): MllamaModel {
    const config = parseMllamaConfig(raw);
    const { text, vision } = config;
    const layout = { crossLayers: config.crossAttentionLayers, embedRows: text.vocabSize + 8 };
    checkWeights(src, [
      ...mllamaVisionExpected(vision),
      { name: 'multi_modal_projector.weight', shape: [text.hiddenSize, vision.visionOutputDim] },
      { name: 'multi_modal_projector.bias', shape: [text.hiddenSize] },
      ...decoderExpected(text, TEXT, HEAD, layout),
      ...config.crossAttentionLayers.flatMap((i) => crossLayerExpected(text, TEXT, i)),
    ]);
    if (memoryPlanOf(src)?.stream)
      throw new ConfigError(`${src.origin}: mllama loads resident only (streaming is not implemented for cross-attention layers); raise the memory budget`);
    const vw = loadMllamaVisionWeights(src, vision);
    const projector = { w: readTensor(src, 'multi_modal_projector.weight', true), b: readTensor(src, 'multi_modal_projector.bias') };
    const cross = new Map(config.crossAttentionLayers.map((i) => [i, loadCrossLayer(src, TEXT, i)] as const));
    const dw = loadDecoderWeights(src, text, TEXT, HEAD, layout);
    return new MllamaModel(config, new Decoder(text, dw, config.crossAttentionLayers), new MllamaVisionTower(vision, vw), projector, cross);
  }

  hookPoints(): HookPointInfo[] {
    const lm: HookPointInfo[] = [];
    const self = decoderHookPoints('lm', 'lm', this.numLayers, true);
    for (let i = 0; i < this.numLayers; i++)
      lm.push(...(this.crossLayers.has(i) ? crossLayerHookPoints(i) : self.filter((h) => h.layer === i)));
    return [
      ...mllamaVisionHookNames(this.config.vision),
      { name: 'vision.cross_attention_states', axes: ['batch', 'vision_token', 'd_model'], part: 'projector' },
      { name: 'lm.embed', axes: ['batch', 'pos', 'd_model'], part: 'lm' },
      ...lm,
      { name: 'lm.final_norm', axes: ['batch', 'pos', 'd_model'], part: 'lm' },
      { name: 'lm.logits', axes: ['batch', 'pos', 'vocab'], part: 'lm' },
    ];
  }

  /**
   * The decoder layers that are self-attention layers, in order: the l-th is layer l of the text-only backbone
   * (Llama-3.1-8B for Llama-3.2-11B-Vision), so backbone ↔ VLM patching maps backbone layer l to this[l].
   */
  get selfAttentionLayers(): number[] {
    return Array.from({ length: this.numLayers }, (_, i) => i).filter((i) => !this.crossLayers.has(i));
  }

  /** Vision tokens per image (tiles × (patches + class token)), the unit of the cross-attention states. */
  get visionTokensPerImage(): number {
    return this.config.vision.maxNumTiles * patchesPerTile(this.config.vision);
  }

  /**
   * pixels [B, images, tiles, C, H, W] → cross-attention states [B, images·tiles·patches, D] (HF flattens the
   * projector output per row), through the hooks `vision.output` and `vision.cross_attention_states`.
   */
  encodeImages(pixels: tf.Tensor, aspectRatioIds: number[][], aspectRatioMask: number[][][], ctx: RunContext = new RunContext()): tf.Tensor {
    const out = this.vision.forward(pixels, { aspectRatioIds, aspectRatioMask }, ctx);
    const B = out.shape[0] as number;
    return linear(out, this.projector.w, this.projector.b).reshape([B, -1, this.dModel]);
  }

  /** The per-run cross-attention state, or undefined when the run has no image (HF then skips those layers). */
  private crossRun(inputs: ModelInputs, ctx: RunContext): CrossAttentionRun | undefined {
    const B = inputs.inputIds.length;
    let states: tf.Tensor;
    let am = inputs.aspectRatioMask;
    if (inputs.imageFeatures) {
      const t = inputs.imageFeatures;
      if (t.rank !== 3 || t.shape[0] !== B || t.shape[2] !== this.dModel || (t.shape[1] as number) % this.visionTokensPerImage !== 0)
        throw new InputError(`imageFeatures (cross-attention states) must be [${B}, images·${this.visionTokensPerImage}, ${this.dModel}], got [${t.shape}]`);
      states = t;
    } else if (inputs.pixelValues) {
      if (!inputs.aspectRatioIds || !am)
        throw new InputError('mllama needs aspectRatioIds and aspectRatioMask with pixelValues (MllamaImageProcessor gives both)');
      states = this.encodeImages(inputs.pixelValues, inputs.aspectRatioIds, am, ctx);
    } else {
      if (inputs.crossAttentionMask) throw new InputError('crossAttentionMask given without pixelValues or imageFeatures');
      return undefined;
    }
    states = ctx.point('vision.cross_attention_states', states);
    const tiles = this.config.vision.maxNumTiles;
    const images = (states.shape[1] as number) / this.visionTokensPerImage;
    if (!inputs.crossAttentionMask && !am)
      throw new InputError('mllama needs aspectRatioMask (real tiles per image) to build the cross-attention mask, or an explicit crossAttentionMask');
    const dense =
      inputs.crossAttentionMask ??
      mllamaCrossAttentionMask(inputs.inputIds, this.imageTokenIndex, am!.map((r) => r.map((t) => t.reduce((a, x) => a + x, 0))), tiles);
    const T = inputs.inputIds[0].length;
    if (dense.length !== B || dense.some((r) => r.length !== T || r.some((m) => m.length !== images || m.some((x) => x.length !== tiles))))
      throw new InputError(`crossAttentionMask must be [${B}][${T}][${images} images][${tiles} tiles] to match the inputs and the cross-attention states`);
    const visible = dense.map((r) => r.map((m) => m.flat()));
    return new CrossAttentionRun(this.text, this.crossLayers, states, { visible, patches: patchesPerTile(this.config.vision) });
  }

  protected embedInputs(inputs: ModelInputs, mask: number[][], ctx: RunContext): Embedded {
    const positions = inputs.positionIds ? toInt32(inputs.positionIds) : positionsFromMask(mask);
    const cross = this.crossRun(inputs, ctx);
    return { embeds: this.decoder.embed(inputs.inputIds), positions, cross };
  }

  /** Start-at-layer runs still need the image for the cross-attention layers after the start. */
  protected override positionsOnly(inputs: ModelInputs, mask: number[][], ctx: RunContext): Embedded {
    return { ...super.positionsOnly(inputs, mask, ctx), cross: this.crossRun(inputs, ctx) };
  }

  dispose(): void {
    disposeDecoderWeights(this.decoder.w);
    disposeMllamaVisionWeights(this.vision.w);
    tf.dispose([this.projector.w, this.projector.b]);
    this.crossLayers.forEach(disposeCrossLayer);
  }
}
