// M-RoPE position ids (HF Qwen2VLForConditionalGeneration.get_rope_index, images only): three position
// streams (temporal, height, width) computed from the prompt and the image grids. Pure: no tensors.
import { InputError } from '../../errors';

export interface RopeIndex {
  /** [3][B][T]: temporal, height, width streams; pads hold 1 as in HF. */
  positions: Int32Array[][];
  /** HF `rope_deltas`: decode position = cache index + delta. */
  ropeDeltas: number[];
  /** The same offset counted from real tokens (what ModelBase.generate adds): ropeDelta + T - realTokens. */
  decodeDelta: number[];
}

export interface RopeTokens {
  imageTokenId: number;
  videoTokenId: number;
  visionStartTokenId: number;
  spatialMergeSize: number;
}

/**
 * Three-stream position ids. Text advances all streams together; an image (a vision_start token followed by
 * image tokens) takes t/h/w grid coordinates offset by the position it starts at, and the text after it
 * restarts at (largest position so far) + 1. Padding (mask 0) is skipped and gets position 1.
 * Images are consumed from `grids` in row-major order, as their features are.
 */
export function qwen2VLRopeIndex(
  ids: number[][],
  mask: number[][] | undefined,
  grids: readonly (readonly [number, number, number])[] | undefined,
  tok: RopeTokens,
): RopeIndex {
  const B = ids.length;
  const T = ids[0].length;
  const m = mask ?? ids.map((r) => r.map(() => 1));
  const positions = [0, 1, 2].map(() => ids.map(() => new Int32Array(T).fill(1)));
  const ropeDeltas: number[] = [];
  const decodeDelta: number[] = [];
  if (!grids) {
    // HF's text-only branch: cumsum(mask) - 1 on every stream; its max includes the pads' 1.
    for (let b = 0; b < B; b++) {
      let c = 0;
      let max = -Infinity;
      let real = 0;
      for (let t = 0; t < T; t++) {
        const p = m[b][t] ? c : 1;
        if (m[b][t]) {
          c++;
          real++;
        }
        for (const s of positions) s[b][t] = p;
        max = Math.max(max, p);
      }
      ropeDeltas.push(max + 1 - T);
      decodeDelta.push(max + 1 - real);
    }
    return { positions, ropeDeltas, decodeDelta };
  }
  const M = tok.spatialMergeSize;
  let imageIndex = 0;
  for (let b = 0; b < B; b++) {
    const where: number[] = [];
    for (let t = 0; t < T; t++) if (m[b][t]) where.push(t);
    const toks = where.map((t) => ids[b][t]);
    let images = 0;
    for (let i = 0; i + 1 < toks.length; i++)
      if (toks[i] === tok.visionStartTokenId) {
        if (toks[i + 1] === tok.imageTokenId) images++;
        else if (toks[i + 1] === tok.videoTokenId)
          throw new InputError(`row ${b} has a video (vision_start followed by video token ${tok.videoTokenId}); videos are not supported yet`);
      }
    const out: [number, number, number][] = [];
    let st = 0;
    let next = 0; // largest position so far + 1
    for (let k = 0; k < images; k++) {
      const ed = toks.indexOf(tok.imageTokenId, st);
      const g = grids[imageIndex];
      if (!g) throw new InputError(`the prompt has more images than imageGridThw (${grids.length} grids)`);
      imageIndex++;
      const [gt, gh0, gw0] = g;
      if (gh0 % M !== 0 || gw0 % M !== 0)
        throw new InputError(`imageGridThw ${JSON.stringify(g)}: h and w must be multiples of spatial_merge_size ${M}`);
      const gh = gh0 / M;
      const gw = gw0 / M;
      const n = gt * gh * gw;
      for (let i = ed; i < ed + n; i++)
        if (toks[i] !== tok.imageTokenId)
          throw new InputError(
            `row ${b}: image ${imageIndex - 1} (grid ${g.join('x')}) needs ${n} consecutive image tokens (id ${tok.imageTokenId}) but the run is shorter`,
          );
      for (let i = st; i < ed; i++) out.push([next + i - st, next + i - st, next + i - st]);
      const base = next + ed - st;
      for (let a = 0; a < gt; a++) for (let r = 0; r < gh; r++) for (let c = 0; c < gw; c++) out.push([base + a, base + r, base + c]);
      next = base + Math.max(gt, gh, gw);
      st = ed + n;
    }
    for (let i = st; i < toks.length; i++) out.push([next + i - st, next + i - st, next + i - st]);
    const max = out.reduce((a, p) => Math.max(a, p[0], p[1], p[2]), -1);
    where.forEach((t, j) => {
      for (let s = 0; s < 3; s++) positions[s][b][t] = out[j][s];
    });
    ropeDeltas.push(max + 1 - T);
    decodeDelta.push(max + 1 - where.length);
  }
  return { positions, ropeDeltas, decodeDelta };
}
