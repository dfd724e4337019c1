// Shared transformer maths, as small pure functions used by every family.
// Linear weights are stored pre-transposed as [in, out] so every matMul is the rank-2, no-transpose
// fast path of the wasm backend (XNNPACK); see ../shared/reference/engine.md.
import * as tf from '@tensorflow/tfjs-core';
// Chained tensor methods (x.reshape, x.slice, ...) as typed, registered side effect.
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import { engineConfig } from '../engine/config';
import { nativeMatMulInfo } from '../engine/native-matmul';
import { nativeLayerNorm, nativeMaskedSoftmax, nativeRmsNorm, nativeRope } from '../engine/native-ops';
import { ropeInvFreq, type RopeScaling } from './rope';

/**
 * Whether attention over B·H heads of T queries and S keys runs as one batched product (else one rank-2 product
 * per head). Small problems: one batched matMul beats many rank-2 ones, whose per-op overhead dominates (30x at
 * the teaching model's shapes). Large ones take the rank-2 XNNPACK path (engine.md), unless the BLAS kernel
 * runs: it does the batched, transposed product natively (7B attention 5x faster, bench/), as long as the
 * scores fit (B·H·T·S floats; the rank-2 path holds one head's at a time).
 */
export function batchedAttention(B: number, H: number, T: number, S: number, headDim: number): boolean {
  return B * H * T * S * headDim <= engineConfig().batchedAttentionMax || (nativeMatMulInfo().enabled && B * H * T * S <= 1 << 26);
}

/** x [..., in] · w [in, out] (+ b) via one rank-2 matMul. */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor | null): tf.Tensor {
  const shape = x.shape as number[];
  const inDim = shape[shape.length - 1];
  const x2 = x.rank === 2 ? x : x.reshape([-1, inDim]);
  let y = tf.matMul(x2 as tf.Tensor2D, w as tf.Tensor2D);
  if (b) y = tf.add(y, b);
  return x.rank === 2 ? y : y.reshape([...shape.slice(0, -1), w.shape[1] as number]);
}

// Each op below runs as one fused native kernel where it can (engine/native-ops.ts: addon built, no gradient tape,
// wasm or cpu, float32) and as the stock composite otherwise; both compute the same float32 expression.

/** Llama RMSNorm: w * x / sqrt(mean(x^2) + eps), computed in float32 like HF. */
export function rmsNorm(x: tf.Tensor, w: tf.Tensor, eps: number): tf.Tensor {
  const fused = nativeRmsNorm(x, w, eps);
  if (fused) return fused;
  const variance = tf.mean(tf.square(x), -1, true);
  return tf.mul(w, tf.mul(x, tf.rsqrt(tf.add(variance, eps))));
}

/** LayerNorm over the last axis (biased variance, as torch). */
export function layerNorm(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const fused = nativeLayerNorm(x, w, b, eps);
  if (fused) return fused;
  const mean = tf.mean(x, -1, true);
  const centred = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centred), -1, true);
  return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, eps))), w), b);
}

export type Activation = 'silu' | 'gelu' | 'gelu_pytorch_tanh' | 'gelu_new' | 'quick_gelu' | 'relu';

export function activation(name: Activation | string, x: tf.Tensor): tf.Tensor {
  switch (name) {
    case 'silu':
    case 'swish':
      return tf.mul(x, tf.sigmoid(x));
    case 'gelu': // exact erf GELU (torch nn.GELU default)
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
    case 'gelu_pytorch_tanh':
    case 'gelu_new':
    case 'gelu_fast': {
      const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
    }
    case 'quick_gelu':
      return tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
    case 'relu':
      return tf.relu(x);
    default:
      throw new Error(`unsupported activation ${name}`);
  }
}

/**
 * SwiGLU-style gated MLP (Llama/Mistral decoder, Pixtral vision): down(act(gate(x)) * up(x)), gate and up
 * [in, I] each. Two products, not one fused [in, 2I] product and a split: splitting the fused output along its
 * last axis is a strided copy of the whole activation, which cost more than the second product's call
 * (issue 20's profile: SplitV 11 % of a forward and 18 % of a sweep at the mid shapes; bench/profile.ts).
 */
export function gatedMlp(x: tf.Tensor, gate: tf.Tensor, up: tf.Tensor, down: tf.Tensor, act: Activation | string): tf.Tensor {
  return linear(tf.mul(activation(act, linear(x, gate)), linear(x, up)), down);
}

const ROTATIONS = new Map<number, Float32Array>();

/** The [d, d] matrix R with x R = rotate_half(x): R[i + d/2, i] = -1, R[i, i + d/2] = 1. */
function rotation(d: number): Float32Array {
  let r = ROTATIONS.get(d);
  if (!r) {
    r = new Float32Array(d * d);
    for (let i = 0; i < d / 2; i++) {
      r[(i + d / 2) * d + i] = -1;
      r[i * d + i + d / 2] = 1;
    }
    ROTATIONS.set(d, r);
  }
  return r;
}

/**
 * HF rotate_half: concat(-x2, x1) over the last axis, as one product with a signed permutation matrix. Each
 * output is one input times ±1 plus zeros, so the result is exact (equal to the split/negate/concat form bit
 * for bit on finite inputs), and one product is 3–4x faster than the three strided copies (issue 20).
 */
export function rotateHalf(x: tf.Tensor): tf.Tensor {
  const d = x.shape[x.rank - 1];
  return tf.tidy(() => tf.matMul(x.reshape([-1, d]), tf.tensor2d(rotation(d), [d, d])).reshape(x.shape));
}

/**
 * (q*cos + rotate_half(q)*sin) * scale with cos/sin broadcastable to q; `scale` folds the queries' 1/sqrt(d) into
 * the same pass (HF scales the scores; q·k·s and (q·s)·k differ by float32 rounding only).
 */
export function applyRope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, scale = 1): tf.Tensor {
  const fused = nativeRope(x, cos, sin, scale);
  if (fused) return fused;
  const r = tf.add(tf.mul(x, cos), tf.mul(rotateHalf(x), sin));
  return scale === 1 ? r : tf.mul(r, scale);
}

/**
 * RoPE angle tables [B, T, headDim] for integer positions. With `mropeSection` (Qwen2-VL), positions come as
 * three streams (t, h, w) and frequency i uses the stream whose section contains i (sections cover headDim/2).
 */
export function ropeTables(
  positions: Int32Array[] | Int32Array[][],
  headDim: number,
  theta: number,
  mropeSection?: number[],
  scaling?: RopeScaling,
): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const { invFreq, attentionFactor: af } = ropeInvFreq(headDim, theta, scaling, scaling?.type === 'dynamic' ? maxPosition(positions) + 1 : 0);
  const streamOf = new Int32Array(half);
  if (mropeSection) {
    let s = 0;
    let acc = mropeSection[0];
    for (let i = 0; i < half; i++) {
      while (i >= acc && s < mropeSection.length - 1) acc += mropeSection[++s];
      streamOf[i] = s;
    }
  }
  const streams: Int32Array[][] = mropeSection ? (positions as Int32Array[][]) : [positions as Int32Array[]];
  const B = streams[0].length;
  const T = streams[0][0].length;
  const cos = new Float32Array(B * T * headDim);
  const sin = new Float32Array(B * T * headDim);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const base = (b * T + t) * headDim;
      for (let i = 0; i < half; i++) {
        // float32 product, like torch's matmul of float inv_freq with float positions
        const ang = Math.fround(streams[streamOf[i]][b][t] * invFreq[i]);
        // YaRN scales cos and sin (HF multiplies them by attention_scaling in float32); 1 otherwise.
        const c = af === 1 ? Math.cos(ang) : Math.fround(Math.cos(ang)) * af;
        const s = af === 1 ? Math.sin(ang) : Math.fround(Math.sin(ang)) * af;
        cos[base + i] = c;
        cos[base + i + half] = c;
        sin[base + i] = s;
        sin[base + i + half] = s;
      }
    }
  return { cos, sin };
}

function maxPosition(positions: Int32Array[] | Int32Array[][]): number {
  let m = 0;
  const walk = (p: Int32Array[] | Int32Array[][]): void => {
    for (const r of p) if (r instanceof Int32Array) for (const x of r) m = Math.max(m, x);
    else walk(r);
  };
  walk(positions);
  return m;
}

/**
 * softmax(scores + mask) over the last axis, the additive mask broadcast to the scores. A row whose every entry
 * is -Infinity gives NaN on both paths (callers that block whole rows, mllama's cross-attention, zero them).
 */
export function maskedSoftmax(scores: tf.Tensor, mask?: tf.Tensor | null): tf.Tensor {
  return nativeMaskedSoftmax(scores, mask) ?? tf.softmax(mask ? tf.add(scores, mask) : scores, -1);
}
