// Building tokenizer.json files and loading them back through @huggingface/tokenizers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadTokenizer, TextTokenizer } from '../../src/io/tokenizer';
import { buildBpeTokenizerJson, buildWordLevelTokenizerJson, writeTokenizerFiles } from '../../src/io/tokenizer-build';
import { CheckpointError, InputError } from '../../src/errors';

function withDir(f: (dir: string) => void): void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hopscope-tok-'));
  try {
    f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const WORDS = ['Paris', 'is', 'the', 'capital', 'of', 'France', 'Zürich', ',', '.', '?', '!'];

test('word-level: build, write, load, encode/decode round trip and special ids', () => {
  withDir((dir) => {
    writeTokenizerFiles(dir, buildWordLevelTokenizerJson(WORDS, { specials: { extra: ['<image>'] } }));
    const tok = loadTokenizer(dir);
    assert.deepEqual([tok.unkTokenId, tok.bosTokenId, tok.eosTokenId, tok.padTokenId], [0, 1, 2, 3]);
    assert.equal(tok.tokenToId('<image>'), 4);
    assert.equal(tok.idToToken(5), 'Paris');
    assert.equal(tok.vocabSize, 5 + WORDS.length);
    const ids = tok.encode('Paris is the capital of France.');
    assert.deepEqual(ids, [1, 5, 6, 7, 8, 9, 10, 13]);
    assert.deepEqual(tok.encode('Paris', { addSpecialTokens: false }), [5]);
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'Paris is the capital of France.');
    assert.equal(tok.decode(ids), '<s> Paris is the capital of France.');
    // Unicode words stay whole (the splitter is Unicode-aware); punctuation is split per character.
    assert.deepEqual(tok.tokenize('Zürich?!', { addSpecialTokens: false }), ['Zürich', '?', '!']);
    // Unknown words -> <unk>; the image token is kept whole even without spaces.
    assert.deepEqual(tok.encode('Rome<image>Paris', { addSpecialTokens: false }), [0, 4, 5]);
    assert.ok(tok.isAddedToken('<image>') && tok.isSpecialId(4) && !tok.isSpecialId(5));
    assert.equal(tok.decode([]), '');
    assert.throws(() => tok.decode([999]), InputError);
  });
});

test('BPE (Llama-style): whole words are single "▁word" tokens, the rest falls back to chars/bytes', () => {
  const files = buildBpeTokenizerJson(['Paris', 'capital', 'France'], { specials: { extra: ['<image>'] } });
  const tok = new TextTokenizer(files.tokenizerJson, files.tokenizerConfig);
  assert.deepEqual(tok.tokenize('the capital of France is Paris', { addSpecialTokens: false }), [
    '▁', 't', 'h', 'e', '▁capital', '▁', 'o', 'f', '▁France', '▁', 'i', 's', '▁Paris',
  ]);
  for (const s of ['the capital of France is Paris', 'Zürich ☃ 2024', 'a  b'])
    assert.equal(tok.decode(tok.encode(s), { skipSpecialTokens: true }), s);
  assert.equal(tok.encode('x')[0], tok.bosTokenId);
  // Legacy Llama behaviour: the text after an added token gets its own "▁" prefix.
  assert.deepEqual(tok.tokenize('<image>\nParis', { addSpecialTokens: false }), ['<image>', '▁', '<0x0A>', 'P', 'a', 'r', 'i', 's']);
});

test('builder input errors', () => {
  assert.throws(() => buildWordLevelTokenizerJson(['a', 'a']), InputError);
  assert.throws(() => buildWordLevelTokenizerJson(['two words']), InputError);
  assert.throws(() => buildBpeTokenizerJson(['two words']), InputError);
});

test('missing tokenizer.json and broken JSON are CheckpointErrors naming the file', () => {
  withDir((dir) => {
    assert.throws(() => loadTokenizer(dir), (e: unknown) => e instanceof CheckpointError && /no tokenizer\.json/.test(e.message));
    writeFileSync(path.join(dir, 'tokenizer.model'), 'x');
    assert.throws(() => loadTokenizer(dir), (e: unknown) => e instanceof CheckpointError && /tokenizer\.model/.test(e.message));
    writeFileSync(path.join(dir, 'tokenizer.json'), '{ not json');
    assert.throws(() => loadTokenizer(dir), (e: unknown) => e instanceof CheckpointError && /not valid JSON/.test(e.message));
    writeFileSync(path.join(dir, 'tokenizer.json'), '{}');
    assert.throws(() => loadTokenizer(dir), (e: unknown) => e instanceof CheckpointError && /"model"/.test(e.message));
  });
});

test('special tokens may be AddedToken objects; special_tokens_map.json fills gaps', () => {
  withDir((dir) => {
    const files = buildWordLevelTokenizerJson(WORDS);
    files.tokenizerConfig.bos_token = { __type: 'AddedToken', content: '<s>', lstrip: false };
    files.tokenizerConfig.eos_token = null;
    writeTokenizerFiles(dir, files);
    writeFileSync(path.join(dir, 'special_tokens_map.json'), JSON.stringify({ eos_token: '</s>' }));
    const tok = loadTokenizer(dir);
    assert.deepEqual([tok.bosTokenId, tok.eosTokenId], [1, 2]);
  });
});
