import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { exactMatch, matchAnswer, mentionsEntity, popvqaMatch, popvqaWords } from '../../src/data/answer-match';

test('popvqaWords: NFKC, lower case, \\w+ words longer than 3 code points', () => {
  assert.deepEqual(popvqaWords('The U.S.A. is in North America!'), ['north', 'america']);
  assert.deepEqual(popvqaWords('ＰＡＲＩＳ ﬁnland'), ['paris', 'finland']); // full-width letters and the ﬁ ligature
  assert.deepEqual(popvqaWords('Zu\u0308rich'), ['zürich']); // NFKC composes ü, so it stays one word
  assert.deepEqual(popvqaWords('𠀀𠀁𠀂 𠀀𠀁𠀂𠀃'), ['𠀀𠀁𠀂𠀃']); // length in code points, as Python's len
  assert.deepEqual(popvqaWords('snake_case 1990s'), ['snake_case', '1990s']);
});

test('popvqa rule: two shared long words, or one when the answer has at most one', () => {
  assert.equal(popvqaMatch('He was born in the United States.', 'United States of America'), true);
  assert.equal(popvqaMatch('He was born in America.', 'United States of America'), false);
  assert.equal(popvqaMatch('It is in Paris.', 'Paris'), true);
  assert.equal(popvqaMatch('A Parisian café.', 'Paris'), false); // whole words only
  assert.equal(popvqaMatch('new york', 'New York City'), false); // "new" is short: {york, city} both needed
  assert.equal(popvqaMatch('York City', 'New York City'), true);
  assert.equal(popvqaMatch('Paris', 'Paris Paris'), true); // distinct words: one
});

test('popvqa rule never matches an answer without long words ("USA"); exact does', () => {
  assert.equal(popvqaMatch('He was born in the USA.', 'USA'), false);
  assert.deepEqual(matchAnswer('He was born in the USA.', ['USA'], 'popvqa'), { correct: false, rule: 'popvqa' });
  assert.deepEqual(matchAnswer('He was born in the USA.', ['USA'], 'exact'), { correct: true, rule: 'exact', matched: 'USA' });
  assert.equal(matchAnswer('He was born in the USA.', ['United States of America', 'USA']).correct, false);
});

test('exact rule: normalised answer as a whole-word phrase', () => {
  assert.equal(exactMatch("It's in Paris, France.", 'Paris, France'), true);
  assert.equal(exactMatch('A Parisian café.', 'Paris'), false);
  assert.equal(exactMatch('ＬＥＯＮＡＲＤＯ DA VINCI', 'Leonardo da Vinci'), true);
  assert.equal(exactMatch('Leonardo painted it', 'Leonardo da Vinci'), false);
  assert.equal(exactMatch('anything', '...'), false); // an answer with no words never matches
});

test('matchAnswer reports the rule and the alias that matched', () => {
  const answers = ['Leonardo da Vinci', 'Leonardo'];
  assert.deepEqual(matchAnswer('It was painted by Leonardo.', answers), { correct: true, rule: 'popvqa', matched: 'Leonardo' });
  assert.deepEqual(matchAnswer('Da Vinci, Leonardo', answers, 'exact'), { correct: true, rule: 'exact', matched: 'Leonardo' });
  assert.deepEqual(matchAnswer('Michelangelo', answers, 'exact'), { correct: false, rule: 'exact' });
  assert.throws(() => matchAnswer('x', answers, 'fuzzy' as never), /unknown rule/);
});

test('mentionsEntity: subject or alias', () => {
  const aliases = ['Barack Hussein Obama II', 'Obama'];
  assert.equal(mentionsEntity('The subject in this image is Barack Obama.', 'Barack Obama', aliases).matched, 'Barack Obama');
  assert.equal(mentionsEntity('This is President Obama.', 'Barack Obama', aliases).matched, 'Obama');
  assert.equal(mentionsEntity('This is Michelle.', 'Barack Obama', aliases).correct, false);
  assert.equal(mentionsEntity('This is Obama.', 'Barack Obama', [], 'exact').correct, false);
  assert.equal(mentionsEntity('This is barack  obama', 'Barack Obama', [], 'exact').correct, true);
});
