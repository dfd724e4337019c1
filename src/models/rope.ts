// RoPE frequencies: the one inverse-frequency function every rotary table in hopscope uses (decoder text
// models and Qwen2-VL's vision tower), with the HF `rope_scaling` variants real VLM backbones ship with.
// Each variant follows transformers v4.45.2's `_compute_*_parameters` in modeling_rope_utils.py, in float32
// steps (Math.fround) where torch computes on float32 tensors, so frequencies match HF's to the last bit or two.
import { ConfigError } from '../errors';

export type RopeScaling =
  | { type: 'default' }
  /** Position interpolation: every frequency divided by `factor`. */
  | { type: 'linear'; factor: number }
  /** Dynamic NTK: when a forward sees positions beyond `maxPositions`, the base grows with the sequence length. */
  | { type: 'dynamic'; factor: number; maxPositions: number }
  /** Llama-3.1: low frequencies divided by `factor`, high ones kept, a smooth ramp between (by wavelength). */
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  /** YaRN: interpolation/extrapolation blended per frequency, cos/sin scaled by `attentionFactor`. */
  | { type: 'yarn'; factor: number; maxPositions: number; attentionFactor: number; betaFast: number; betaSlow: number };

export const SUPPORTED_ROPE_TYPES = ['default', 'linear', 'dynamic', 'llama3', 'yarn', 'mrope'] as const;

function num(s: Record<string, unknown>, key: string, where: string, dflt?: number): number {
  const v = s[key];
  if (v === undefined || v === null) {
    if (dflt !== undefined) return dflt;
    throw new ConfigError(`${where}: rope_scaling.${key} is missing (needed by rope_type "${String(s.rope_type ?? s.type)}")`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(`${where}: rope_scaling.${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Reads `rope_scaling` of an HF text config. `mrope` (Qwen2-VL's multimodal sections) is handled by the caller
 * and returns the default here; any other type is refused with the list of supported ones.
 */
export function parseRopeScaling(scaling: unknown, maxPositionEmbeddings: number, where: string): RopeScaling {
  if (scaling == null) return { type: 'default' };
  if (typeof scaling !== 'object' || Array.isArray(scaling)) throw new ConfigError(`${where}: rope_scaling must be an object or null, got ${JSON.stringify(scaling)}`);
  const s = scaling as Record<string, unknown>;
  // HF reads `rope_type`, falling back to the legacy `type` key.
  const type = String(s.rope_type ?? s.type ?? 'default');
  switch (type) {
    case 'default':
    case 'mrope':
      return { type: 'default' };
    case 'linear':
      return { type: 'linear', factor: positive(num(s, 'factor', where), 'factor', where) };
    case 'dynamic':
      return { type: 'dynamic', factor: positive(num(s, 'factor', where), 'factor', where), maxPositions: maxPositionEmbeddings };
    case 'llama3': {
      const r = {
        type: 'llama3' as const,
        factor: positive(num(s, 'factor', where), 'factor', where),
        lowFreqFactor: positive(num(s, 'low_freq_factor', where), 'low_freq_factor', where),
        highFreqFactor: positive(num(s, 'high_freq_factor', where), 'high_freq_factor', where),
        originalMaxPositions: positive(num(s, 'original_max_position_embeddings', where), 'original_max_position_embeddings', where),
      };
      if (r.highFreqFactor <= r.lowFreqFactor)
        throw new ConfigError(`${where}: rope_scaling.high_freq_factor (${r.highFreqFactor}) must exceed low_freq_factor (${r.lowFreqFactor})`);
      return r;
    }
    case 'yarn': {
      const factor = positive(num(s, 'factor', where), 'factor', where);
      // HF: `attention_factor` defaults to 0.1·ln(factor) + 1 (the YaRN paper); beta_fast/slow default to 32/1.
      const af = s.attention_factor == null ? 0.1 * Math.log(factor) + 1 : num(s, 'attention_factor', where);
      return { type: 'yarn', factor, maxPositions: maxPositionEmbeddings, attentionFactor: af, betaFast: Number(s.beta_fast || 32), betaSlow: Number(s.beta_slow || 1) };
    }
    default:
      throw new ConfigError(
        `${where}: rope_scaling type "${type}" is not supported (supported: ${SUPPORTED_ROPE_TYPES.join(', ')}); ` +
          'convert the checkpoint or open an issue with its config',
      );
  }
}

function positive(v: number, key: string, where: string): number {
  if (!(v > 0)) throw new ConfigError(`${where}: rope_scaling.${key} must be positive, got ${v}`);
  return v;
}

/** HF default: inv_freq[i] = 1 / theta^(2i/dim), the exponent a float32 division (arange(...).float() / dim). */
function defaultInvFreq(dim: number, theta: number): Float32Array {
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) out[i] = 1 / Math.pow(theta, Math.fround((2 * i) / dim));
  return out;
}

/**
 * Inverse frequencies [dim/2] and the cos/sin scale (`attention_factor`, 1 except YaRN) for rotary dimension `dim`.
 * `seqLen` (max position + 1 of the current forward) matters only to `dynamic`, which HF recomputes when it exceeds
 * max_position_embeddings (and resets below it): computed per forward here, so a result never depends on history.
 */
export function ropeInvFreq(dim: number, theta: number, scaling: RopeScaling = { type: 'default' }, seqLen = 0): { invFreq: Float32Array; attentionFactor: number } {
  const f = Math.fround;
  switch (scaling.type) {
    case 'default':
      return { invFreq: defaultInvFreq(dim, theta), attentionFactor: 1 };
    case 'linear': {
      const inv = defaultInvFreq(dim, theta);
      for (let i = 0; i < inv.length; i++) inv[i] = f(inv[i] / scaling.factor);
      return { invFreq: inv, attentionFactor: 1 };
    }
    case 'dynamic': {
      const { factor, maxPositions } = scaling;
      if (seqLen <= maxPositions) return { invFreq: defaultInvFreq(dim, theta), attentionFactor: 1 };
      // base · ((factor · seq_len / max) − (factor − 1)) ^ (dim / (dim − 2)), on float32 tensors in HF
      const grown = f(f(f(f(factor * seqLen) / maxPositions) - (factor - 1)) ** (dim / (dim - 2)));
      return { invFreq: defaultInvFreq(dim, f(theta * grown)), attentionFactor: 1 };
    }
    case 'llama3': {
      const { factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositions: orig } = scaling;
      const inv = defaultInvFreq(dim, theta);
      const lowWavelen = orig / low;
      const highWavelen = orig / high;
      for (let i = 0; i < inv.length; i++) {
        const wavelen = f(f(2 * Math.PI) / inv[i]);
        if (wavelen < highWavelen) continue; // high frequencies kept
        if (wavelen > lowWavelen) {
          inv[i] = f(inv[i] / factor);
          continue;
        }
        const s = f(f(f(orig / wavelen) - low) / (high - low));
        // HF's order: (1 - s) * inv / factor + s * inv
        inv[i] = f(f(f(f(1 - s) * inv[i]) / factor) + f(s * inv[i]));
      }
      return { invFreq: inv, attentionFactor: 1 };
    }
    case 'yarn': {
      const { factor, maxPositions, betaFast, betaSlow } = scaling;
      const half = dim / 2;
      const correctionDim = (rot: number) => (dim * Math.log(maxPositions / (rot * 2 * Math.PI))) / (2 * Math.log(theta));
      const lo = Math.max(Math.floor(correctionDim(betaFast)), 0);
      let hi = Math.min(Math.ceil(correctionDim(betaSlow)), dim - 1);
      if (lo === hi) hi += 0.001; // HF: prevents a division by zero
      const inv = new Float32Array(half);
      for (let i = 0; i < half; i++) {
        const pos = f(Math.pow(theta, f((2 * i) / dim)));
        const extrap = f(1 / pos);
        const interp = f(1 / f(factor * pos));
        const ramp = Math.min(1, Math.max(0, f(f(i - lo) / f(hi - lo))));
        const extrapFactor = f(1 - ramp);
        inv[i] = f(f(interp * f(1 - extrapFactor)) + f(extrap * extrapFactor));
      }
      return { invFreq: inv, attentionFactor: scaling.attentionFactor };
    }
  }
}
