// Shared pieces of the benchmarks: timing (median of few repetitions: the 2 cores are shared), random
// same-shaped models built in memory, memory readings.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { CausalLM } from '../src/models/causal-lm';
import { memorySource } from '../src/models/weights';
import { TEACHING_DIR } from '../src/data/teaching-models';

export const ROOT = path.resolve(__dirname, '..');

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** Median wall time (ms) of `reps` calls after `warmup` untimed calls. */
export function timeMs(fn: () => void, reps: number, warmup = 1): number {
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

export function loadAvg(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

export function rssMb(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

let peakRss = 0;
/** Samples RSS into the run's peak (call after big steps; Node has no peak-RSS counter of its own). */
export function samplePeak(): number {
  peakRss = Math.max(peakRss, rssMb(), process.resourceUsage().maxRSS / 1024);
  return peakRss;
}

/** Deterministic uniform(-scale, scale) floats (xorshift32): fast enough for 800 MB of 7B-shaped weights. */
export function randomArray(n: number, scale: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let x = seed >>> 0 || 1;
  const k = (2 * scale) / 4294967296;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) * k - scale;
  }
  return out;
}

export interface LmShape {
  vocab: number;
  d: number;
  layers: number;
  heads: number;
  kvHeads: number;
  inter: number;
}

/** HF config.json fields of a Llama with this shape. */
export function llamaConfig(s: LmShape): Record<string, unknown> {
  return {
    model_type: 'llama',
    vocab_size: s.vocab,
    hidden_size: s.d,
    intermediate_size: s.inter,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    hidden_act: 'silu',
    tie_word_embeddings: false,
  };
}

/** A random Llama of this shape through the real loader (memorySource → fused, pre-transposed weights). */
export function randomLlama(s: LmShape, seed = 1): CausalLM {
  const hd = s.d / s.heads;
  const m = new Map<string, { shape: number[]; data: Float32Array }>();
  let k = seed;
  const add = (name: string, shape: number[], scale: number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    m.set(name, { shape, data: scale === 0 ? new Float32Array(n).fill(1) : randomArray(n, scale, ++k * 2654435761) });
  };
  const sc = (fanIn: number) => Math.sqrt(3 / fanIn);
  add('model.embed_tokens.weight', [s.vocab, s.d], 1);
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}.`;
    add(`${p}input_layernorm.weight`, [s.d], 0);
    add(`${p}self_attn.q_proj.weight`, [s.heads * hd, s.d], sc(s.d));
    add(`${p}self_attn.k_proj.weight`, [s.kvHeads * hd, s.d], sc(s.d));
    add(`${p}self_attn.v_proj.weight`, [s.kvHeads * hd, s.d], sc(s.d));
    add(`${p}self_attn.o_proj.weight`, [s.d, s.heads * hd], sc(s.d) / s.layers);
    add(`${p}post_attention_layernorm.weight`, [s.d], 0);
    add(`${p}mlp.gate_proj.weight`, [s.inter, s.d], sc(s.d));
    add(`${p}mlp.up_proj.weight`, [s.inter, s.d], sc(s.d));
    add(`${p}mlp.down_proj.weight`, [s.d, s.inter], sc(s.inter) / s.layers);
    // Let the JS arrays of finished layers go as we build (7B-shaped layers are 800 MB each).
  }
  add('model.norm.weight', [s.d], 0);
  add('lm_head.weight', [s.vocab, s.d], sc(s.d));
  const model = CausalLM.load(memorySource('bench random llama', m), llamaConfig(s));
  m.clear();
  return model;
}

/**
 * The default teaching model's decoder shape: read from its config.json (TEACHING_DIR) when the trained model exists,
 * otherwise a stand-in of the size the teaching recipe targets (toyworld vocabulary, 12 layers).
 */
export function teachingShape(): { shape: LmShape; source: string } {
  const cfgFile = path.join(TEACHING_DIR, 'config.json');
  if (fs.existsSync(cfgFile)) {
    const raw = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, any>;
    const t = (raw.text_config ?? raw) as Record<string, number>;
    return {
      shape: {
        vocab: t.vocab_size,
        d: t.hidden_size,
        layers: t.num_hidden_layers,
        heads: t.num_attention_heads,
        kvHeads: t.num_key_value_heads ?? t.num_attention_heads,
        inter: t.intermediate_size,
      },
      source: `${path.relative(ROOT, cfgFile)} (same-shaped random weights)`,
    };
  }
  return {
    shape: { vocab: 289, d: 256, layers: 12, heads: 8, kvHeads: 8, inter: 1024 },
    source: `stand-in (${path.relative(ROOT, TEACHING_DIR)} absent): vocab 289, d 256, 12 layers, 8 heads, I 1024`,
  };
}

/** Tokens of a teaching prompt: 64 image tokens (32×32 view, 4-px patches) plus ~32 text tokens. */
export const TEACHING_T = 96;

export function randomIds(B: number, T: number, vocab: number, seed: number): number[][] {
  let x = seed;
  return Array.from({ length: B }, () =>
    Array.from({ length: T }, () => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x % vocab;
    }),
  );
}

export function tfMemory(): { numTensors: number; numBytesMb: number } {
  const m = tf.memory();
  return { numTensors: m.numTensors, numBytesMb: m.numBytes / 2 ** 20 };
}
