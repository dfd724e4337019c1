import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { InputError } from '../../src/errors';
import { filterQuestions, identificationPrompt, loadPopVQA, questionColumns, questionsByEntity } from '../../src/data/popvqa';

const SAMPLE = path.resolve(__dirname, '../fixtures/popvqa-sample');
const TOYWORLD = path.resolve(__dirname, '../../data/toyworld');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-popvqa-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('real-format sample: entities, aliases, join, extra columns', () => {
  const ds = loadPopVQA(SAMPLE);
  assert.equal(ds.root, SAMPLE);
  assert.deepEqual(
    ds.entities.map((e) => [e.type, e.sUri]),
    [
      ['celebs', 'Q76'],
      ['celebs', 'Q5284'],
      ['landmarks', 'Q243'],
      ['landmarks', 'Q10285'],
      ['paintings', 'Q12418'],
      ['brands', 'Q2813'],
    ],
  );
  const eiffel = ds.entities.find((e) => e.sUri === 'Q243')!;
  assert.deepEqual(eiffel.aliases, ['Tour Eiffel', "Gustave Eiffel's tower", 'La dame de fer']);
  assert.deepEqual(eiffel.extra, { s_pop: '150217' });
  assert.deepEqual(ds.entities.find((e) => e.sUri === 'Q10285')!.aliases, []);
  assert.equal(ds.imagePath(eiffel), path.join(SAMPLE, 'images/landmarks/Q243.png'));
  assert.equal(ds.questions.length, 8); // the orphan row is skipped
  const q = ds.questions.find((x) => x.sUri === 'Q243' && x.question.startsWith('In which city'))!;
  assert.equal(q.type, 'landmarks');
  assert.equal(q.questionForImage, 'In which city is the structure in this image located?');
  assert.deepEqual(q.possibleAnswers, ['Paris', 'Paris, France']);
  assert.equal(q.relation, undefined);
  assert.equal(questionsByEntity(ds).size, 6);
});

test('missing image and orphan questions are warnings, not errors', () => {
  const ds = loadPopVQA(SAMPLE);
  const coke = ds.entities.find((e) => e.sUri === 'Q2813')!;
  assert.equal(coke.imageFound, false);
  assert.ok(ds.entities.filter((e) => e !== coke).every((e) => e.imageFound));
  assert.equal(ds.warnings.length, 2);
  assert.match(ds.warnings[0], /missing image for Q2813 \(Coca-Cola\)/);
  assert.match(ds.warnings[1], /1 question rows match no entity/);
  assert.deepEqual(loadPopVQA(SAMPLE, { checkImages: false }).warnings.length, 1);
});

test('filters: types, limit per type, seeded sampling', () => {
  const celebs = loadPopVQA(SAMPLE, { types: ['celebs'] });
  assert.deepEqual(celebs.entities.map((e) => e.sUri), ['Q76', 'Q5284']);
  assert.ok(celebs.questions.every((q) => q.type === 'celebs'));
  assert.equal(celebs.warnings.length, 1); // the orphan only; filtered-out types are not orphans
  const first = loadPopVQA(SAMPLE, { limitPerType: 1 });
  assert.deepEqual(first.entities.map((e) => e.sUri), ['Q76', 'Q243', 'Q12418', 'Q2813']);
  assert.throws(() => loadPopVQA(SAMPLE, { types: ['people' as never] }), InputError);
  assert.throws(() => loadPopVQA(SAMPLE, { limitPerType: -1 }), InputError);
});

test('toyworld loads as PopVQA, with seeded sampling stable and in file order', () => {
  const ds = loadPopVQA(TOYWORLD);
  assert.deepEqual(ds.warnings, []);
  assert.equal(ds.entities.length, 208);
  assert.equal(ds.questions.length, 832);
  assert.ok(ds.entities.every((e) => e.imageFound));
  assert.ok(ds.questions.every((q) => q.relation && q.possibleAnswers.length > 0));
  const a = loadPopVQA(TOYWORLD, { limitPerType: 5, seed: 7, types: ['brands', 'paintings'] });
  const b = loadPopVQA(TOYWORLD, { limitPerType: 5, seed: 7, types: ['brands', 'paintings'] });
  const c = loadPopVQA(TOYWORLD, { limitPerType: 5, seed: 8, types: ['brands', 'paintings'] });
  assert.deepEqual(a.entities, b.entities);
  assert.notDeepEqual(a.entities, c.entities);
  assert.equal(a.entities.length, 10);
  assert.equal(a.questions.length, 40);
  const ids = a.entities.map((e) => e.sUri);
  assert.deepEqual(ids, [...ids].sort());
});

test('identification prompts are the reference ones', () => {
  assert.deepEqual(identificationPrompt('celebs'), {
    query: 'Identify by name the subject in the image.',
    answerPrefix: 'The subject in this image is ',
  });
  assert.equal(identificationPrompt('brands').query, "Identify by name the brand who's logo appears in the image.");
  assert.equal(identificationPrompt('paintings').answerPrefix, 'The name of the painting is ');
  assert.equal(identificationPrompt('landmarks').query, 'Identify by name the place in the image.');
  assert.throws(() => identificationPrompt('cars' as never), InputError);
});

function writeSample(name: string, entities: string, questions: string): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'entities.csv'), entities);
  fs.writeFileSync(path.join(dir, 'questions.csv'), questions);
  return dir;
}

const Q_HEADER = 's_uri,subject,question,question_for_image,possible_answers\n';

test('column validation names the file and the missing column', () => {
  const dir = writeSample('nocol', 'type,s_uri,subject,resized_path\ncelebs,Q1,A B,x.png\n', Q_HEADER);
  assert.throws(
    () => loadPopVQA(dir),
    (e: unknown) => e instanceof InputError && e.message.includes(path.join(dir, 'entities.csv')) && e.message.includes("missing column 'aliases'"),
  );
  const dir2 = writeSample('noq', 'type,s_uri,subject,aliases,resized_path\n', 's_uri,subject,question\n');
  assert.throws(
    () => loadPopVQA(dir2),
    (e: unknown) => e instanceof InputError && e.message.includes('questions.csv') && /missing columns 'question_for_image', 'possible_answers'/.test(e.message),
  );
  assert.throws(() => loadPopVQA(path.join(tmp, 'does-not-exist')), (e: unknown) => e instanceof InputError && /cannot read/.test(e.message));
});

test('bad values name file, row and column', () => {
  const dir = writeSample('badtype', 'type,s_uri,subject,aliases,resized_path\ncars,Q1,A B,[],x.png\n', Q_HEADER);
  assert.throws(() => loadPopVQA(dir), (e: unknown) => e instanceof InputError && /entities\.csv row 2: type 'cars'/.test(e.message));
  const dir2 = writeSample('badlist', "type,s_uri,subject,aliases,resized_path\ncelebs,Q1,A B,['x',x.png\n", Q_HEADER);
  assert.throws(() => loadPopVQA(dir2), (e: unknown) => e instanceof InputError && /row 2 column aliases/.test(e.message));
});

test('duplicate entities and BOM-prefixed files', () => {
  const dir = writeSample(
    'dup',
    '\ufefftype,s_uri,subject,aliases,resized_path\ncelebs,Q1,A B,[],x.png\ncelebs,Q1,A B,"[\'C\']",y.png\n',
    Q_HEADER + 'Q1,A B,Who?,Who here?,[\'D\']\n',
  );
  const ds = loadPopVQA(dir, { checkImages: false });
  assert.equal(ds.entities.length, 1);
  assert.deepEqual(ds.entities[0].aliases, []);
  assert.equal(ds.questions.length, 1);
  assert.match(ds.warnings[0], /duplicate entity \(Q1, A B\)/);
});

test('question filter: columns of questions.csv, AND over columns, OR over values; entities without a question dropped', () => {
  const ds = loadPopVQA(SAMPLE);
  assert.deepEqual(ds.questionColumns, ['s_uri', 'subject', 'question', 'question_for_image', 'possible_answers']);
  const eiffel = filterQuestions(ds, { s_uri: ['Q243', 'Q999'] });
  assert.ok(eiffel.questions.length > 0 && eiffel.questions.every((q) => q.sUri === 'Q243'));
  assert.deepEqual(eiffel.entities.map((e) => e.sUri), ['Q243']);
  assert.equal(eiffel.imagePath(eiffel.entities[0]), ds.imagePath(ds.entities.find((e) => e.sUri === 'Q243')!));
  assert.equal(ds.questions.length, 8, 'the input is not modified');
  // possible_answers is a list: it matches when it contains the value.
  const paris = filterQuestions(ds, { possible_answers: 'Paris' });
  assert.ok(paris.questions.length >= 1 && paris.questions.every((q) => q.possibleAnswers.includes('Paris')));
  assert.equal(filterQuestions(ds, { s_uri: 'Q243', possible_answers: 'nowhere' }).entities.length, 0);
  // Hand-made datasets (no header recorded): the known columns, relation and the extra ones.
  const { questionColumns: _h, ...bare } = ds;
  assert.deepEqual(questionColumns(bare), ['s_uri', 'subject', 'question', 'question_for_image', 'possible_answers']);
});

test('question filter: a column the data lacks is an InputError naming it and listing the columns', () => {
  const ds = loadPopVQA(SAMPLE);
  assert.throws(
    () => filterQuestions(ds, { vqa_split: 'heldout' }),
    (e: unknown) =>
      e instanceof InputError && /no column 'vqa_split'/.test(e.message) && /columns: s_uri, subject, question, question_for_image, possible_answers\)/.test(e.message),
  );
  assert.throws(() => filterQuestions(ds, { s_uri: [] }), (e: unknown) => e instanceof InputError && /non-empty list of strings/.test(e.message));
});
