// Text-only decoder LMs (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM): the "backbone" a VLM is built on.

import { parseDecoderConfig } from './config';
import { Decoder, decoderHookNames, positionsFromMask } from './decoder';
import { disposeDecoderWeights, loadDecoderWeights } from './decoder-weights';
import type { HookPointInfo, RunContext } from './hooks';
import { ModelBase, toInt32, type Embedded, type ModelInputs } from './model';
import type { WeightSource } from './weights';

export class CausalLM extends ModelBase {
  readonly family: string;
  readonly kind = 'lm' as const;

  constructor(decoder: Decoder) {
    super(decoder.cfg, decoder);
    this.family = decoder.cfg.modelType;
  }

  static load(src: WeightSource, raw: Record<string, unknown>): CausalLM {
    const cfg = parseDecoderConfig(raw, 'config.json');
    return new CausalLM(new Decoder(cfg, loadDecoderWeights(src, cfg, 'model.', 'lm_head.weight')));
  }

  hookPoints(): HookPointInfo[] {
    return decoderHookNames(this.text);
  }

  protected embedInputs(inputs: ModelInputs, mask: number[][], _ctx: RunContext): Embedded {
    const positions = inputs.positionIds ? toInt32(inputs.positionIds) : positionsFromMask(mask);
    return { embeds: this.decoder.embed(inputs.inputIds), positions };
  }

  dispose(): void {
    disposeDecoderWeights(this.decoder.w);
  }
}

