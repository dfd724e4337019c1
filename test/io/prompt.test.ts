// Prompt templates and the span-recording builder, with tokenizers built in-test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TextTokenizer } from '../../src/io/tokenizer';
import { buildBpeTokenizerJson, buildWordLevelTokenizerJson } from '../../src/io/tokenizer-build';
import { buildPrompt, buildPromptFromText, imageTokenRole, renderPrompt, TEMPLATES, TemplateName, TokenSpan } from '../../src/io/prompt';
import { anyresLayout, clipImageLayout, parseAnyresModelConfig, qwenImageLayout } from '../../src/io/processors';
import { ConfigError, InputError } from '../../src/errors';
import { fixtureJson } from './vision-fixtures';

const EXTRA = [
  '<image>', '<|image_pad|>', '<|vision_start|>', '<|vision_end|>', '<|im_start|>', '<|im_end|>',
  '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>', '[INST]', '[/INST]', '[IMG]',
];
const WORDS = [
  'USER', 'ASSISTANT', 'What', 'is', 'the', 'capital', 'of', 'country', 'where', 'Eiffel', 'Tower', 'The', 'answer',
  'system', 'user', 'assistant', 'You', 'are', 'a', 'helpful', 'Answer', 'questions', 'A', 'chat', 'between', 'curious',
  'human', 'and', 'an', 'artificial', 'intelligence', 'gives', 'detailed', 'polite', 'answers', 'to', 's', "'", ',', '.', '?', ':',
];
const files = buildWordLevelTokenizerJson(WORDS, { specials: { extra: EXTRA } });
const word = new TextTokenizer(files.tokenizerJson, files.tokenizerConfig);
const bpeFiles = buildBpeTokenizerJson(WORDS.filter((w) => /^\w+$/.test(w)), { specials: { extra: EXTRA } });
const bpe = new TextTokenizer(bpeFiles.tokenizerJson, bpeFiles.tokenizerConfig);

const Q = 'What is the capital of the country where the Eiffel Tower is?';
const ENTITY = 'Eiffel Tower';
const slice = (ids: number[], s: TokenSpan | null) => (s ? ids.slice(s.start, s.end) : []);

test('rendered texts per template (image, question, answer prefix)', () => {
  const r = (t: TemplateName, opts: { answerPrefix?: string; system?: string; numImages?: number } = {}) =>
    renderPrompt({ template: t, question: 'Q?', numImages: 1, ...opts }).text;
  assert.equal(r('llava-1.5'), 'USER: <image>\nQ?\nASSISTANT:');
  assert.equal(r('llava-1.5', { answerPrefix: 'It is' }), 'USER: <image>\nQ?\nASSISTANT: It is');
  assert.equal(r('llava-1.5', { numImages: 0 }), 'USER: \nQ?\nASSISTANT:');
  assert.equal(r('llava-1.5-hf'), 'USER: <image>\nQ? ASSISTANT:');
  assert.equal(r('llava-1.5-hf', { numImages: 0 }), 'USER: Q? ASSISTANT:');
  assert.ok(r('vicuna-v1').startsWith("A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions. USER: <image>\nQ? ASSISTANT:"));
  assert.equal(r('mistral-instruct'), '[INST] <image>\nQ? [/INST]');
  assert.equal(r('pixtral'), '[INST][IMG]Q?[/INST]');
  assert.equal(
    r('chatml-qwen2vl'),
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Q?<|im_end|>\n<|im_start|>assistant\n',
  );
  assert.equal(r('chatml-qwen2vl', { numImages: 0, system: '' }), '<|im_start|>user\nQ? <|im_end|>\n<|im_start|>assistant\n');
  assert.equal(r('chatml-qwen2vl-hf', { numImages: 0, system: '' }), '<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n');
  assert.equal(r('chatml-yi'), '<|im_start|>system\nAnswer the questions.<|im_end|><|im_start|>user\n<image>\nQ?<|im_end|><|im_start|>assistant\n');
  assert.equal(r('llama-3'), '<|start_header_id|>user<|end_header_id|>\n\n<image>\nQ?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
  assert.equal(r('plain', { answerPrefix: 'A:' }), '<image>\nQ? A:');
});

test('every template: image span, question, subject, answer prefix and last index are right', () => {
  for (const tok of [word, bpe])
    for (const name of Object.keys(TEMPLATES) as TemplateName[]) {
      const p = buildPrompt(tok, { template: name, question: Q, entity: ENTITY, answerPrefix: 'The answer is', images: [{ numTokens: 5 }] });
      const s = p.spans;
      const where = `${name} (${tok === word ? 'word-level' : 'bpe'})`;
      assert.equal(s.length, p.inputIds.length, where);
      assert.equal(s.last, p.inputIds.length - 1, where);
      assert.equal(s.images.length, 1);
      const img = s.images[0];
      assert.equal(img.length, 5);
      assert.ok(slice(p.inputIds, { start: img.start, end: img.start + 5 }).every((id) => id === p.imageTokenId), where);
      assert.equal(p.inputIds.filter((id) => id === p.imageTokenId).length, 5, where);
      assert.equal(tok.decode(slice(p.inputIds, s.question)).trim(), Q, where);
      assert.equal(tok.decode(slice(p.inputIds, s.subject)).trim(), ENTITY, where);
      assert.equal(tok.decode(slice(p.inputIds, s.answerPrefix)).trim(), 'The answer is', where);
      assert.ok(s.query && s.question && s.query.start === img.start + 5 && s.query.end === s.question.end, where);
      assert.ok(s.subject && s.question && s.subject.start >= s.question.start && s.subject.end <= s.question.end, where);
      assert.equal(s.answerPrefix?.end, s.length, where);
      assert.deepEqual(JSON.parse(JSON.stringify(s)), s, where);
    }
});

test('text-only variants: no image spans, query = question', () => {
  const p = buildPrompt(word, { template: 'llava-1.5', question: Q, entity: 'Eiffel' });
  assert.equal(p.text, `USER: \n${Q}\nASSISTANT:`);
  assert.deepEqual(p.spans.images, []);
  assert.deepEqual(p.spans.query, p.spans.question);
  assert.deepEqual(slice(p.inputIds, p.spans.subject), [word.requireId('Eiffel')]);
  assert.equal(p.inputIds[p.spans.last], word.requireId(':'));
});

test('Llama-style BPE keeps the "▁" the HF tokenizer puts after <image> (whole-text tokenisation)', () => {
  const p = buildPrompt(bpe, { template: 'llava-1.5', question: Q, images: [{ numTokens: 3 }] });
  const after = p.spans.images[0].start + 3;
  assert.deepEqual([bpe.idToToken(p.inputIds[after]), bpe.idToToken(p.inputIds[after + 1])], ['▁', '<0x0A>']);
  assert.deepEqual(p.inputIds.slice(0, 4).map((i) => bpe.idToToken(i)), ['<s>', '▁USER', ':', '▁']);
});

test('several images of different sizes, with layouts carried into the spans', () => {
  const a = clipImageLayout(28, 7);
  const b = qwenImageLayout([1, 4, 6], 2);
  const p = buildPrompt(word, { template: 'llava-1.5', question: Q, images: [{ numTokens: 16, layout: a }, { numTokens: 6, layout: b }] });
  const [s0, s1] = p.spans.images;
  assert.deepEqual([s0.start, s0.length, s1.start, s1.length], [3, 16, 19, 6]);
  assert.deepEqual(s0.layout, a);
  assert.equal(p.spans.query?.start, 25);
});

test('fixture E: anyres counts 52/56 put the image tokens exactly where HF pre-expanded them', () => {
  const E = fixtureJson('llava_next_tiny_E', 'inputs.json') as { input_ids: number[][]; image_sizes: [number, number][]; image_token_index: number };
  const cfg = parseAnyresModelConfig(fixtureJson('llava_next_tiny_E', 'config.json'));
  // E's rows: <s> w w w <image> w w w w   and   <s> w <image> w w  (words stand in for E's random ids).
  const texts = ['What is the <image>capital of the country', 'What <image>is the'];
  texts.forEach((text, i) => {
    const layout = anyresLayout(E.image_sizes[i], cfg);
    const p = buildPromptFromText(word, text, { images: [{ numTokens: layout.numTokens, layout }] });
    const want = E.input_ids[i].map((id, k) => (id === E.image_token_index ? k : -1)).filter((k) => k >= 0);
    const got = p.inputIds.map((id, k) => (id === p.imageTokenId ? k : -1)).filter((k) => k >= 0);
    assert.deepEqual(got, want);
    assert.equal(p.inputIds.length, E.input_ids[i].length);
  });
});

test('fixture D: Qwen2-VL image block positions (vision_start, 6 pads, vision_end)', () => {
  const D = fixtureJson('qwen2vl_tiny_D', 'inputs.json') as { input_ids: number[][]; image_grid_thw: [number, number, number][] };
  const texts = [
    'What is the<|vision_start|><|image_pad|><|vision_end|>capital of the country where',
    'What is the capital of<|vision_start|><|image_pad|><|vision_end|>the country where',
  ];
  texts.forEach((text, i) => {
    const l = qwenImageLayout(D.image_grid_thw[i], 2);
    const p = buildPromptFromText(word, text, { imageToken: '<|image_pad|>', images: [{ numTokens: l.t * l.h * l.w, layout: l }], addSpecialTokens: false });
    const role = (ids: number[], k: number) => (ids[k] === 297 ? 'img' : ids[k] === 295 ? 'start' : ids[k] === 296 ? 'end' : 'text');
    const vs = word.requireId('<|vision_start|>');
    const ve = word.requireId('<|vision_end|>');
    const mine = p.inputIds.map((id) => (id === p.imageTokenId ? 297 : id === vs ? 295 : id === ve ? 296 : 0));
    assert.deepEqual(mine.map((_, k) => role(mine, k)), D.input_ids[i].map((_, k) => role(D.input_ids[i], k)));
  });
});

test('a tokenizer without <image> as an added token: pieces are tokenised apart, id from the config', () => {
  const plain = buildWordLevelTokenizerJson(['USER', 'What', ':']);
  const tok = new TextTokenizer(plain.tokenizerJson, plain.tokenizerConfig);
  const p = buildPromptFromText(tok, 'USER: <image>\nWhat', { images: [{ numTokens: 2 }], imageTokenId: 99 });
  assert.deepEqual(p.inputIds, [1, 4, 6, 99, 99, 5]);
  assert.deepEqual(p.spans.question, { start: 5, end: 6 });
  assert.throws(() => buildPromptFromText(tok, 'USER: <image>', { images: [{ numTokens: 2 }] }), InputError);
});

test('errors: unknown template, marker/image count mismatches, entity not found, id mismatch', () => {
  assert.throws(() => buildPrompt(word, { template: 'llava-2', question: Q }), (e: unknown) => e instanceof InputError && /unknown prompt template "llava-2"/.test(e.message));
  assert.throws(() => buildPromptFromText(word, Q, { images: [{ numTokens: 4 }] }), (e: unknown) => e instanceof InputError && /no "<image>" marker/.test(e.message));
  assert.throws(() => buildPromptFromText(word, '<image><image> What', { images: [{ numTokens: 4 }] }), (e: unknown) => e instanceof InputError && /2 "<image>" marker\(s\) but 1 image/.test(e.message));
  assert.throws(() => buildPromptFromText(word, '<image> What', { images: [] }), (e: unknown) => e instanceof InputError && /1 "<image>" marker\(s\) but 0 image/.test(e.message));
  assert.throws(() => buildPrompt(word, { template: 'llava-1.5', question: 'see <image>', images: [{ numTokens: 4 }] }), InputError);
  assert.throws(() => buildPrompt(word, { template: 'llava-1.5', question: Q, entity: 'Louvre' }), (e: unknown) => e instanceof InputError && /Louvre/.test(e.message));
  assert.throws(() => buildPrompt(word, { template: 'llava-1.5', question: Q, images: [{ numTokens: 0 }] }), InputError);
  assert.throws(() => buildPrompt(word, { template: 'llava-1.5', question: Q, images: [{ numTokens: 4 }], imageTokenId: 32000 }), ConfigError);
});

test('imageTokenRole decodes grid, anyres (base, tiles, newlines) and Qwen merged positions', () => {
  const cfg = parseAnyresModelConfig(fixtureJson('llava_next_tiny_E', 'config.json'));
  const l = anyresLayout([40, 70], cfg); // g=4, 4 kept rows x 8 cols, newline every 9
  assert.deepEqual(imageTokenRole(l, 0), { part: 'base', row: 0, col: 0 });
  assert.deepEqual(imageTokenRole(l, 15), { part: 'base', row: 3, col: 3 });
  assert.deepEqual(imageTokenRole(l, 16), { part: 'tile', row: 0, col: 0 });
  assert.deepEqual(imageTokenRole(l, 24), { part: 'newline', row: 0 });
  assert.deepEqual(imageTokenRole(l, 51), { part: 'newline', row: 3 });
  assert.throws(() => imageTokenRole(l, 52), InputError);
  assert.deepEqual(imageTokenRole(clipImageLayout(336, 14), 25), { part: 'grid', row: 1, col: 1 });
  assert.deepEqual(imageTokenRole(clipImageLayout(28, 7, { strategy: 'full' }), 0), { part: 'cls' });
  assert.deepEqual(imageTokenRole(qwenImageLayout([1, 4, 6], 2), 4), { part: 'merged', t: 0, row: 1, col: 1 });
});

// ---------------------------------------------------------------------------------------------------
// Golden prompts against the PopVQA authors' code (github ido-co/vlm-modality-gap, read at HEAD of its
// default branch). Each template string is quoted from their file and line, filled as their get_prompt
// does (str.format with query and prefix), and must equal hopscope's rendering character for character;
// the token ids through buildPrompt (one slot per image, so no expansion) must equal the tokenizer's own
// encoding of the authors' string (BOS from the tokenizer, as the HF processor adds it).
const AUTHORS: { template: TemplateName; file: string; image: string; text: string; prefixSlot: boolean }[] = [
  // setup.py:105-106
  { template: 'llava-1.5', file: 'setup.py:105-106', image: 'USER: <image>\n{query}\nASSISTANT:', text: 'USER: \n{query}\nASSISTANT:', prefixSlot: false },
  // setup.py:84-85
  {
    template: 'chatml-yi-34b',
    file: 'setup.py:84-85',
    image: '<|im_start|>system\nYou are a helpful assistant. <|im_end|><|im_start|>user\n<image>\n{query}<|im_end|><|im_start|>assistant\n{prefix}',
    text: '<|im_start|>system\nYou are a helpful assistant. <|im_end|><|im_start|>user\n{query}<|im_end|><|im_start|>assistant\n{prefix}',
    prefixSlot: true,
  },
  // setup.py:132-133
  {
    template: 'chatml-qwen2vl',
    file: 'setup.py:132-133',
    image: '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{query}<|im_end|>\n<|im_start|>assistant\n{prefix}',
    text: '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{query} <|im_end|>\n<|im_start|>assistant\n{prefix}',
    prefixSlot: true,
  },
  // setup_more.py:26-37 (PROMPT_IM_TEMP / PROMPT_NO_IM_TEMP), rendered with its literal '<|begin_of_text|>':
  // tokenizer_image_token puts the tokenizer's BOS in front of it (two BOS; test below).
  {
    template: 'llama-3-more',
    file: 'setup_more.py:26-37',
    image:
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful language and vision assistant. You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n<image>\n{query}<|eot_id|><|start_header_id|>assistant<|end_header_id|>',
    text: '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful language and vision assistant. You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n{query}<|eot_id|><|start_header_id|>assistant<|end_header_id|>',
    prefixSlot: false,
  },
];
// The identification query and prefix of utils.py:39-41 (landmarks), and generation_qa.py:64/67's questions.
const ID_QUERY = 'Identify by name the place in the image.';
const ID_PREFIX = 'The name of the place is ';

test('golden: each template renders exactly as the authors\' code (image and text, with and without prefix)', () => {
  for (const a of AUTHORS) {
    const fill = (t: string, query: string, prefix = '') => t.replace('{query}', query).replace('{prefix}', prefix);
    assert.equal(renderPrompt({ template: a.template, question: ID_QUERY, numImages: 1 }).text, fill(a.image, ID_QUERY), `${a.template} image (${a.file})`);
    assert.equal(renderPrompt({ template: a.template, question: Q, numImages: 0 }).text, fill(a.text, Q), `${a.template} text (${a.file})`);
    // The patching prompts (cross_patch.py:97): with the prefix where the authors' template has a slot for it.
    if (a.prefixSlot) assert.equal(renderPrompt({ template: a.template, question: ID_QUERY, numImages: 1, answerPrefix: ID_PREFIX }).text, fill(a.image, ID_QUERY, ID_PREFIX), `${a.template} prefix`);
  }
});

test('golden: token ids of the rendered prompts equal the tokenizer on the authors\' strings', () => {
  for (const a of AUTHORS)
    for (const tok of [word, bpe]) {
      const fill = (t: string, query: string) => t.replace('{query}', query).replace('{prefix}', '');
      const img = buildPrompt(tok, { template: a.template, question: Q, entity: ENTITY, images: [{ numTokens: 1 }] });
      assert.deepEqual(img.inputIds, tok.encode(fill(a.image, Q)), `${a.template} image ids`);
      const txt = buildPrompt(tok, { template: a.template, question: Q, entity: ENTITY });
      assert.deepEqual(txt.inputIds, tok.encode(fill(a.text, Q)), `${a.template} text ids`);
      assert.equal(tok.decode(slice(txt.inputIds, txt.spans.subject)).replace(/\s/g, ''), ENTITY.replace(/\s/g, ''));
    }
  // Pinned ids for the LLaVA-1.5 text prompt 'USER: \nWhat is the capital?\nASSISTANT:' with the BPE tokenizer
  // built above, whose specials include Pixtral's [IMG] (BOS, "▁USER", ":", "▁", newline byte, the question, newline byte, "ASSISTANT" in bytes, ":").
  const ids = buildPrompt(bpe, { template: 'llava-1.5', question: 'What is the capital?' }).inputIds;
  assert.deepEqual(ids, [1, 445, 297, 271, 25, 326, 343, 336, 355, 389, 419, 506, 302, 25, 304, 322, 322, 312, 322, 323, 304, 317, 323, 297]);
  assert.deepEqual(ids.map((i) => bpe.idToToken(i)).slice(0, 5), ['<s>', '▁USER', ':', '▁', '<0x0A>']);
});

test("llama-3-more: the ids LLaVA's tokenizer_image_token gives the authors' string, two BOS first (Llama-3.1's tokenizer adds one)", () => {
  const f = buildWordLevelTokenizerJson(WORDS, { specials: { bos: '<|begin_of_text|>', extra: EXTRA } });
  const tok = new TextTokenizer(f.tokenizerJson, f.tokenizerConfig);
  const bos = tok.bosTokenId!;
  const imageId = tok.requireId('<image>', 'image token');
  // LLaVA's mm_utils.tokenizer_image_token: each '<image>'-separated chunk tokenised with specials; if the
  // first chunk starts with BOS, that BOS is emitted once and every chunk's first token is dropped.
  const llavaIds = (prompt: string) => {
    const chunks = prompt.split('<image>').map((c) => tok.encode(c));
    const offset = chunks[0][0] === bos ? 1 : 0;
    const out = offset ? [bos] : [];
    chunks.forEach((c, i) => {
      if (i > 0) out.push(imageId);
      out.push(...c.slice(offset));
    });
    return out;
  };
  const authors = (body: string) =>
    `<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful language and vision assistant. You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n${body}<|eot_id|><|start_header_id|>assistant<|end_header_id|>`;
  const img = buildPrompt(tok, { template: 'llama-3-more', question: Q, entity: ENTITY, images: [{ numTokens: 1 }] }).inputIds;
  assert.deepEqual(img, llavaIds(authors(`<image>\n${Q}`)));
  const txt = buildPrompt(tok, { template: 'llama-3-more', question: Q, entity: ENTITY }).inputIds;
  assert.deepEqual(txt, llavaIds(authors(Q)));
  for (const ids of [img, txt]) assert.deepEqual(ids.slice(0, 3), [bos, bos, tok.requireId('<|start_header_id|>', 'header')]);
});
