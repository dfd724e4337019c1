// Forward-pass throughput (tokens/s) of whole models, and the attention-layout question: per-(row, kv group)
// rank-2 matMuls (what src/models/decoder.ts does) against one batched matMul with a transpose flag.
import * as tf from '@tensorflow/tfjs-core';
import { applyRope } from '../src/models/layers';
import { randomIds, randomLlama, samplePeak, timeMs, type LmShape } from './lib';

export interface ForwardRow {
  label: string;
  B: number;
  T: number;
  ms: number;
  tokensPerS: number;
}

/** Median forward time of a random model of `shape` on [B, T] tokens (logits read back). */
export function forwardRow(label: string, shape: LmShape, B: number, T: number, reps: number): ForwardRow {
  const model = randomLlama(shape);
  samplePeak();
  const ids = randomIds(B, T, shape.vocab, 7);
  const ms = timeMs(() => {
    const out = model.forward({ inputIds: ids });
    out.logits!.dataSync();
    samplePeak();
    out.dispose();
  }, reps);
  model.dispose();
  return { label, B, T, ms, tokensPerS: (B * T * 1000) / ms };
}

export interface AttnRow {
  label: string;
  perGroupMs: number;
  batchedMs: number;
}

/**
 * The attention core only (scores, softmax, probs·V) in both layouts, same inputs. The decoder's layout:
 * per (row, group) q[nRep*T, hd]·kᵀ[hd, S] with an explicit transpose op; the batched one: one
 * tf.matMul(q, k, transposeB) over [B*H] (tfjs's slow path on stock wasm, BLAS with the native kernel).
 */
export function attentionRow(label: string, B: number, H: number, KV: number, T: number, hd: number, reps: number): AttnRow {
  const q = tf.randomNormal([B, H, T, hd]);
  const k = tf.randomNormal([B, KV, T, hd]);
  const v = tf.randomNormal([B, KV, T, hd]);
  const cos = tf.ones([B, 1, T, hd]);
  const sin = tf.zeros([B, 1, T, hd]);
  const mask = tf.zeros([B, 1, T, T]);
  const nRep = H / KV;
  const perGroup = () =>
    tf.tidy(() => {
      const qq = applyRope(q, cos, sin);
      const rows: tf.Tensor[] = [];
      for (let b = 0; b < B; b++) {
        const heads: tf.Tensor[] = [];
        for (let g = 0; g < KV; g++) {
          const qg = qq.slice([b, g * nRep, 0, 0], [1, nRep, T, hd]).reshape([nRep * T, hd]);
          const kT = k.slice([b, g, 0, 0], [1, 1, T, hd]).reshape([T, hd]).transpose();
          const s = tf.matMul(qg, kT).reshape([nRep, T, T]);
          const p = tf.softmax(tf.add(s, mask.slice([b, 0, 0, 0], [1, 1, T, T]).reshape([1, T, T])), -1);
          const vg = v.slice([b, g, 0, 0], [1, 1, T, hd]).reshape([T, hd]);
          heads.push(tf.matMul(p.reshape([nRep * T, T]), vg).reshape([nRep, T, hd]));
        }
        rows.push(tf.concat(heads, 0));
      }
      tf.stack(rows, 0).dataSync();
    });
  const batched = () =>
    tf.tidy(() => {
      const qq = applyRope(q, cos, sin).reshape([B * KV, nRep * T, hd]);
      const kk = k.reshape([B * KV, T, hd]);
      const vv = v.reshape([B * KV, T, hd]);
      const s = tf.matMul(qq, kk, false, true).reshape([B, H, T, T]);
      const p = tf.softmax(tf.add(s, mask), -1).reshape([B * KV, nRep * T, T]);
      tf.matMul(p, vv).reshape([B, H, T, hd]).dataSync();
    });
  const row = { label, perGroupMs: timeMs(perGroup, reps), batchedMs: timeMs(batched, reps) };
  tf.dispose([q, k, v, cos, sin, mask]);
  return row;
}
