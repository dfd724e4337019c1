// Llama-3.2-Vision preprocessing, following transformers 4.45.2: MllamaProcessor's cross-attention mask
// (which text tokens may read which image tiles) and MllamaImageProcessor (tiling, canvas choice, resize, pad).

/**
 * HF get_cross_attention_token_mask: per image, the [start, end) token span that attends to it. An image's span
 * runs from its <|image|> token to the next image token (the last one to the end, -1); consecutive image tokens
 * share the span of the last of them.
 */
export function crossAttentionTokenSpans(ids: readonly number[], imageTokenId: number): [number, number][] {
  const locs = ids.flatMap((t, i) => (t === imageTokenId ? [i] : []));
  if (locs.length === 0) return [];
  if (locs.length === 1) return [[locs[0], -1]];
  const spans: [number, number][] = locs.slice(0, -1).map((l, i) => [l, locs[i + 1]]);
  spans.push([locs[locs.length - 1], ids.length]);
  let lastEnd = spans[spans.length - 1][1];
  for (let i = spans.length - 1; i >= 0; i--) {
    if (spans[i][0] === spans[i][1] - 1) spans[i][1] = lastEnd;
    lastEnd = spans[i][1];
  }
  return spans;
}

/**
 * MllamaProcessor's dense cross_attention_mask [B][T][images][maxTiles] from (padded) input ids and the number of
 * real tiles per image (convert_sparse_cross_attention_mask_to_dense).
 */
export function mllamaCrossAttentionMask(
  inputIds: readonly (readonly number[])[],
  imageTokenId: number,
  numTiles: readonly (readonly number[])[],
  maxNumTiles: number,
): number[][][][] {
  const spans = inputIds.map((r) => crossAttentionTokenSpans(r, imageTokenId));
  const images = Math.max(1, ...spans.map((s) => s.length), ...numTiles.map((n) => n.length));
  return inputIds.map((row, b) => {
    const T = row.length;
    const out = row.map(() => Array.from({ length: images }, () => new Array<number>(maxNumTiles).fill(0)));
    spans[b].forEach(([start, end0], m) => {
      let end = Math.min(end0, T);
      if (end === -1) end = T;
      const n = numTiles[b]?.[m] ?? 0;
      for (let t = start; t < end; t++) for (let j = 0; j < Math.min(n, maxNumTiles); j++) out[t][m][j] = 1;
    });
    return out;
  });
}
