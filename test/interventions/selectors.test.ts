// Selectors resolve against recorded spans (grids, anyres tiles, Qwen2-VL merged cells, text spans),
// shift with left padding, and name what is wrong when a span is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../../src/errors';
import { anyresLayout, parseAnyresModelConfig, qwenImageLayout, clipImageLayout } from '../../src/io/processors';
import type { PromptSpans } from '../../src/io/prompt';
import { describeSelector, gridCoordinates, resolveSelector, selectorPositions, spansFromIds, toSelector } from '../../src/interventions/selectors';
import { fixtureJson } from '../experiments/fixture-data';

const IDS = [1, 126, 214, 28, ...new Array(16).fill(299), 183, 124, 211, 34, 18, 20];

test('image, image-last, query, last and explicit positions on a pre-tokenised prompt', () => {
  const s = spansFromIds(IDS, { imageTokenId: 299, subject: { start: 21, end: 23 } });
  assert.deepEqual(s.images, [{ image: 0, start: 4, length: 16, layout: null }]);
  assert.deepEqual(selectorPositions({ kind: 'image' }, s), Array.from({ length: 16 }, (_, i) => 4 + i));
  assert.deepEqual(selectorPositions('image-last', s), [19]);
  assert.deepEqual(selectorPositions(toSelector('last'), s), [25]);
  assert.deepEqual(selectorPositions(toSelector('query'), s), [20, 21, 22, 23, 24, 25]);
  assert.deepEqual(selectorPositions(toSelector('entity-last'), s), [22]);
  assert.deepEqual(selectorPositions({ kind: 'positions', positions: [0, -1] }, s), [0, 25]);
  // A square span without a layout is read as a g×g grid.
  assert.deepEqual(selectorPositions({ kind: 'image', rows: [1, 2], cols: [2, 4] }, s), [4 + 6, 4 + 7]);
  assert.deepEqual(gridCoordinates(s, 4 + 6), { image: 0, row: 1, col: 2, part: 'grid' });
  assert.equal(gridCoordinates(s, 2), null);
});

test('left padding shifts every position by the row offset; generated tokens are a range', () => {
  const s = spansFromIds(IDS, { imageTokenId: 299 });
  const r = resolveSelector({ kind: 'union', of: [{ kind: 'last' }, { kind: 'generated', from: 1 }] }, { spans: s, offset: 5, promptLength: 31 });
  assert.deepEqual(r.prompt, [30]);
  assert.deepEqual(r.generated, [1, Infinity]);
  assert.deepEqual(resolveSelector({ kind: 'image-last' }, { spans: s, offset: 3, promptLength: 29 }).prompt, [22]);
});

test('the padded fixture rows (G) resolve to the image tokens actually there', () => {
  const g = fixtureJson('llava_tiny_A_padded_G', 'inputs.json');
  const ids: number[][] = g.left.input_ids;
  const lengths: number[] = g.lengths;
  ids.forEach((row, b) => {
    const own = row.slice(row.length - lengths[b]);
    const spans = spansFromIds(own, { imageTokenId: 299 });
    const pos = resolveSelector({ kind: 'image' }, { spans, offset: row.length - lengths[b], promptLength: row.length }).prompt;
    assert.equal(pos.length, 16);
    for (const p of pos) assert.equal(row[p], 299, `row ${b} position ${p}`);
  });
});

test('grid layout with CLS: rows/cols skip the CLS token; part "cls" selects it', () => {
  const layout = clipImageLayout(28, 7, { strategy: 'full' });
  const spans: PromptSpans = { ...spansFromIds([1, ...new Array(17).fill(9), 2], { imageTokenId: 9 }) };
  spans.images[0].layout = layout;
  assert.deepEqual(selectorPositions({ kind: 'image', part: 'cls' }, spans), [1]);
  assert.deepEqual(selectorPositions({ kind: 'image', rows: [0, 1] }, spans), [2, 3, 4, 5]);
  assert.deepEqual(selectorPositions({ kind: 'image', rows: [3, 4], cols: [3, 4] }, spans), [1 + 1 + 15]);
});

test('anyres: base crop, one tile, newline tokens', () => {
  const cfg = parseAnyresModelConfig({ image_grid_pinpoints: [[28, 28], [28, 56], [56, 28], [56, 56]], vision_config: { image_size: 28, patch_size: 7 } });
  const layout = anyresLayout([40, 70], cfg);
  const n = layout.numTokens;
  const spans = spansFromIds([1, ...new Array(n).fill(9), 2], { imageTokenId: 9, layouts: [layout] });
  const base = selectorPositions({ kind: 'image', part: 'base' }, spans);
  assert.equal(base.length, layout.baseTokens);
  const newlines = selectorPositions({ kind: 'image', part: 'newline' }, spans);
  assert.equal(newlines.length, layout.unpaddedRows);
  const tiles = layout.gridRows * layout.gridCols;
  let covered = 0;
  for (let r = 0; r < layout.gridRows; r++)
    for (let c = 0; c < layout.gridCols; c++) covered += selectorPositions({ kind: 'image', tile: { row: r, col: c } }, spans).length;
  assert.equal(covered, layout.unpaddedRows * layout.unpaddedCols, `${tiles} tiles cover the unpadded map`);
  assert.throws(() => selectorPositions({ kind: 'image', cell: { row: 0, col: 0 } }, spans), InputError);
});

test('Qwen2-VL merged grid: one cell, a row band', () => {
  const layout = qwenImageLayout([1, 4, 6], 2); // 2 x 3 merged cells
  const spans = spansFromIds([1, 7, ...new Array(6).fill(9), 8, 2], { imageTokenId: 9, layouts: [layout] });
  assert.deepEqual(selectorPositions({ kind: 'image', cell: { row: 1, col: 2 } }, spans), [2 + 5]);
  assert.deepEqual(selectorPositions({ kind: 'image', rows: [0, 1] }, spans), [2, 3, 4]);
  assert.throws(() => selectorPositions({ kind: 'image', tile: { row: 0, col: 0 } }, spans), /anyres/);
});

test('missing spans and bad names fail with a message naming them', () => {
  const text = spansFromIds([1, 2, 3]);
  assert.throws(() => selectorPositions({ kind: 'image' }, text), /no image span/);
  assert.throws(() => selectorPositions({ kind: 'subject' }, text), /no subject span/);
  assert.throws(() => toSelector('imag'), /unknown position set "imag"/);
  assert.throws(() => selectorPositions({ kind: 'positions', positions: [7] }, text), /outside the prompt/);
  assert.equal(describeSelector({ kind: 'image', rows: [0, 2] }), 'image(rows 0-1)');
});
