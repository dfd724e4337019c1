// The toyworld generator: the committed copy in data/toyworld is exactly what the code generates, the
// tokenizer covers every text, and the world has the properties the teaching model relies on.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { InputError } from '../../src/errors';
import { loadTokenizer } from '../../src/io/tokenizer';
import { mentionsEntity, popvqaWords } from '../../src/data/answer-match';
import { ENTITY_TYPES, filterQuestions, identificationPrompt, loadPopVQA } from '../../src/data/popvqa';
import { parsePythonList } from '../../src/data/python-literal';
import { hashSeed } from '../../src/data/random';
import {
  CAPTIONS,
  COT_SUFFIX,
  PROMPT_TEMPLATE,
  TOYWORLD_DEFAULTS,
  buildWorld,
  decodePngRgb,
  fill,
  generateToyworld,
  identificationAnswer,
  preTokenize,
  pythonListRepr,
  renderRgb,
  viewsOf,
} from '../../src/data/toyworld';

const COMMITTED = path.resolve(__dirname, '../../data/toyworld');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-toyworld-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const REGENERATE =
  "node --import tsx -e \"require('./src/data/toyworld').generateToyworld({...require('./src/data/toyworld').TOYWORLD_DEFAULTS, outDir: 'data/toyworld'})\"";

function listFiles(dir: string, prefix = ''): string[] {
  return fs
    .readdirSync(path.join(dir, prefix), { withFileTypes: true })
    .flatMap((d) => (d.isDirectory() ? listFiles(dir, path.join(prefix, d.name)) : [path.join(prefix, d.name)]))
    .sort();
}

test('the committed data/toyworld is what generateToyworld produces (text byte for byte, PNGs pixel for pixel)', () => {
  const out = path.join(tmp, 'regen');
  const summary = generateToyworld({ ...TOYWORLD_DEFAULTS, outDir: out });
  const files = listFiles(out);
  assert.deepEqual(files, summary.files.slice().sort());
  assert.deepEqual(listFiles(COMMITTED), files, `file lists differ; regenerate with ${REGENERATE}`);
  for (const f of files) {
    const fresh = fs.readFileSync(path.join(out, f));
    const kept = fs.readFileSync(path.join(COMMITTED, f));
    if (f.endsWith('.png')) {
      // Compressed bytes may change with the zlib version; the pixels may not.
      assert.deepEqual(decodePngRgb(kept), decodePngRgb(fresh), `${f} differs; regenerate with ${REGENERATE}`);
    } else {
      assert.ok(fresh.equals(kept), `${f} differs; regenerate with ${REGENERATE}`);
    }
  }
  const bytes = files.reduce((s, f) => s + fs.statSync(path.join(COMMITTED, f)).size, 0);
  assert.ok(bytes < 3_000_000, `data/toyworld is ${bytes} bytes; keep it under 3 MB`);
});

test('sizes: ≥ 50 entities per type, 4 relations each, views and splits consistent', () => {
  const ds = loadPopVQA(COMMITTED);
  for (const t of ENTITY_TYPES) assert.ok(ds.entities.filter((e) => e.type === t).length >= 50, t);
  const views = fs.readFileSync(path.join(COMMITTED, 'views.csv'), 'utf8').trim().split('\n').slice(1);
  assert.equal(views.length, ds.entities.length * TOYWORLD_DEFAULTS.viewsPerEntity);
  const splits = JSON.parse(fs.readFileSync(path.join(COMMITTED, 'splits.json'), 'utf8'));
  for (const e of ds.entities) {
    // entities.csv points at a test view, never seen in training.
    const row = views.find((v) => v.split(',')[4] === e.resizedPath)!.split(',');
    assert.equal(row[3], 'test');
    const rels = ds.questions.filter((q) => q.sUri === e.sUri).map((q) => q.relation!);
    assert.equal(rels.length, 4);
    const { train, heldout } = splits.visualInstructionTuning;
    assert.equal(heldout[e.sUri].length, 2);
    assert.deepEqual([...train[e.sUri], ...heldout[e.sUri]].sort(), rels.slice().sort());
  }
  // Balanced: within a type, every relation is held out about equally often.
  for (const t of ENTITY_TYPES) {
    const counts = new Map<string, number>();
    for (const e of ds.entities.filter((x) => x.type === t))
      for (const r of splits.visualInstructionTuning.heldout[e.sUri]) counts.set(r, (counts.get(r) ?? 0) + 1);
    assert.ok(Math.max(...counts.values()) - Math.min(...counts.values()) <= 4, `${t}: ${[...counts]}`);
  }
});

test('questions.csv vqa_split is splits.json: filtering on heldout selects exactly the held-out pairs', () => {
  const ds = loadPopVQA(COMMITTED);
  assert.deepEqual(ds.questionColumns, ['s_uri', 'subject', 'question', 'question_for_image', 'possible_answers', 'relation', 'vqa_split']);
  const { train, heldout } = JSON.parse(fs.readFileSync(path.join(COMMITTED, 'splits.json'), 'utf8')).visualInstructionTuning;
  for (const q of ds.questions) assert.equal(q.extra.vqa_split, heldout[q.sUri].includes(q.relation) ? 'heldout' : 'train', `${q.sUri} ${q.relation}`);
  const pairs = (split: Record<string, string[]>) => Object.entries(split).flatMap(([s, rels]) => rels.map((r) => `${s}/${r}`)).sort();
  for (const [name, split] of [['heldout', heldout], ['train', train]] as const) {
    const kept = filterQuestions(ds, { vqa_split: name });
    assert.deepEqual(kept.questions.map((q) => `${q.sUri}/${q.relation}`).sort(), pairs(split), name);
    assert.equal(kept.entities.length, ds.entities.length, 'every entity has pairs of both kinds');
  }
});

test('names: multi-word, every word shared, no two entities share two words, aliases unique', () => {
  const world = buildWorld(TOYWORLD_DEFAULTS.seed, TOYWORLD_DEFAULTS.entitiesPerType);
  const allNames = new Set<string>();
  for (const t of ENTITY_TYPES) {
    const ents = world.entities.filter((e) => e.type === t);
    const uses = new Map<string, number>();
    for (const e of ents) {
      assert.ok(e.nameWords.length >= 2 && e.nameWords.length <= 3, e.subject);
      for (const w of e.nameWords) uses.set(w, (uses.get(w) ?? 0) + 1);
    }
    for (const e of ents) {
      // The last word alone never identifies the entity: resolution must combine tokens.
      assert.ok(uses.get(e.nameWords[e.nameWords.length - 1])! >= 2, `${e.subject}: last word unique`);
      assert.ok(e.nameWords.some((w) => uses.get(w)! >= 2));
    }
    for (let i = 0; i < ents.length; i++) {
      for (let j = i + 1; j < ents.length; j++) {
        const shared = ents[i].nameWords.filter((w) => ents[j].nameWords.includes(w));
        assert.ok(shared.length <= 1, `${ents[i].subject} / ${ents[j].subject}`);
      }
    }
  }
  for (const e of world.entities) {
    for (const n of [e.subject, ...e.aliases]) {
      assert.ok(!allNames.has(n.toLowerCase()), `${n} used twice`);
      allNames.add(n.toLowerCase());
    }
    for (const w of e.nameWords) assert.ok([...w].length > 3, `${w} is too short for the PopVQA rule`);
  }
});

test('identification under the PopVQA rule: own name matches, every other entity of the type does not', () => {
  const world = buildWorld(TOYWORLD_DEFAULTS.seed, TOYWORLD_DEFAULTS.entitiesPerType);
  for (const t of ENTITY_TYPES) {
    const ents = world.entities.filter((e) => e.type === t);
    for (const target of ents) {
      for (const said of ents) {
        const gen = identificationAnswer(t, said.subject);
        assert.equal(mentionsEntity(gen, target.subject, target.aliases).correct, said === target, `${said.subject} vs ${target.subject}`);
      }
    }
  }
});

test('facts: answers recur across entities and every answer can match under the PopVQA rule', () => {
  const ds = loadPopVQA(COMMITTED);
  const byRelation = new Map<string, string[]>();
  for (const q of ds.questions) {
    const key = `${q.type}/${q.relation}`;
    byRelation.set(key, [...(byRelation.get(key) ?? []), q.possibleAnswers[0]]);
    assert.ok(q.possibleAnswers.every((a) => popvqaWords(a).length >= 1), `${q.question}: ${q.possibleAnswers}`);
    assert.ok(q.question.includes(q.subject));
    assert.ok(!q.questionForImage.includes(q.subject) && q.questionForImage.includes('in this image'));
  }
  assert.equal(byRelation.size, 16);
  for (const [rel, answers] of byRelation) {
    assert.ok(new Set(answers).size <= answers.length / 2, `${rel}: answers should recur`);
  }
  // Answer words are shared across types too (decades: birth, building, painting).
  const decades = (rel: string) => new Set(byRelation.get(rel));
  assert.ok([...decades('celebs/birth_decade')].some((d) => decades('landmarks/built_decade').has(d)));
});

test('images: views render as recorded, canonical view 0, train and test views differ', () => {
  const world = buildWorld(TOYWORLD_DEFAULTS.seed, TOYWORLD_DEFAULTS.entitiesPerType);
  const { seed, viewsPerEntity, imageSize } = TOYWORLD_DEFAULTS;
  for (const e of [world.entities[0], world.entities[60], world.entities[120], world.entities[200]]) {
    const views = viewsOf({ seed, viewsPerEntity }, e.sUri);
    assert.deepEqual(views[0].augmentation.jitter, [0, 0, 0]);
    const seen = new Set<string>();
    for (const v of views) {
      const png = decodePngRgb(fs.readFileSync(path.join(COMMITTED, v.path)));
      assert.equal(png.width, imageSize);
      assert.deepEqual(png.rgb, renderRgb(e.type, e.identity, v.augmentation, imageSize, hashSeed(seed, 'noise', e.sUri, v.view)));
      const key = Buffer.from(png.rgb).toString('base64');
      assert.ok(!seen.has(key), 'views must differ');
      seen.add(key);
    }
  }
});

test('tokenizer: loads in @huggingface/tokenizers and src/io, covers every text without <unk>', () => {
  const tokJson = JSON.parse(fs.readFileSync(path.join(COMMITTED, 'tokenizer.json'), 'utf8'));
  const tokCfg = JSON.parse(fs.readFileSync(path.join(COMMITTED, 'tokenizer_config.json'), 'utf8'));
  const hf = new Tokenizer(tokJson, tokCfg);
  const io = loadTokenizer(COMMITTED);
  assert.deepEqual(
    ['<unk>', '<s>', '</s>', '<pad>', '<image>'].map((t) => io.tokenToId(t)),
    [0, 1, 2, 3, 4],
  );
  const ds = loadPopVQA(COMMITTED);
  const texts = fs.readFileSync(path.join(COMMITTED, 'lm_corpus.txt'), 'utf8').trim().split('\n');
  for (const q of ds.questions) texts.push(q.question, q.questionForImage, ...q.possibleAnswers);
  for (const e of ds.entities) {
    const id = identificationPrompt(e.type);
    texts.push(
      PROMPT_TEMPLATE.image.replace('{query}', id.query) + ' ' + identificationAnswer(e.type, e.subject) + '</s>',
      ...CAPTIONS[e.type].map((c) => fill(c, e.subject)),
      ...e.aliases,
      COT_SUFFIX[e.type],
    );
  }
  for (const text of texts) {
    const ids = io.encode(text);
    assert.equal(ids[0], 1, 'BOS first');
    assert.ok(!ids.includes(0), `<unk> in: ${text}`);
    assert.deepEqual(ids, hf.encode(text).ids);
    assert.deepEqual(io.tokenize(text, { addSpecialTokens: false }), preTokenize(text), text);
    assert.equal(io.decode(ids, { cleanUpSpaces: false }), ['<s>', ...preTokenize(text)].join(' '));
  }
  // Decoding joins tokens with spaces; clean_up_tokenization_spaces re-attaches punctuation.
  const sentence = texts[0];
  assert.equal(io.decode(io.encode(sentence), { skipSpecialTokens: true }), sentence);
  assert.equal(io.encode('Who painted Mona?').includes(0), true, 'unknown words map to <unk>');
});

test('small worlds and options', () => {
  const out = path.join(tmp, 'small');
  const s = generateToyworld({ seed: 5, outDir: out, entitiesPerType: 4, viewsPerEntity: 2, imageSize: 16, heldoutPerEntity: 1 });
  assert.deepEqual(s.counts.entities, 16);
  assert.equal(s.counts.images, 32);
  const ds = loadPopVQA(out);
  assert.deepEqual(ds.warnings, []);
  assert.equal(decodePngRgb(fs.readFileSync(ds.imagePath(ds.entities[0]))).width, 16);
  const again = generateToyworld({ seed: 5, outDir: path.join(tmp, 'small2'), entitiesPerType: 4, viewsPerEntity: 2, imageSize: 16, heldoutPerEntity: 1 });
  assert.deepEqual(again.world, s.world);
  assert.notDeepEqual(buildWorld(6, 4).entities.map((e) => e.subject), s.world.entities.map((e) => e.subject));
  for (const bad of [{ viewsPerEntity: 1 }, { imageSize: 4 }, { seed: -1 }, { heldoutPerEntity: 5 }]) {
    assert.throws(() => generateToyworld({ seed: 5, outDir: path.join(tmp, 'bad'), entitiesPerType: 4, viewsPerEntity: 2, imageSize: 16, ...bad }), InputError);
  }
  assert.throws(() => buildWorld(1, 3), RangeError);
});

test('pythonListRepr writes what parsePythonList (and Python) reads', () => {
  for (const items of [[], ['a'], ["B's", 'say "x"', 'both \' and "', 'back\\slash', 'tab\there', 'Zürich']]) {
    assert.deepEqual(parsePythonList(pythonListRepr(items)), items);
  }
  assert.equal(pythonListRepr(["B's", 'x']), `["B's", 'x']`); // repr's quote choice
});
