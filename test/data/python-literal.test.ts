import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { InputError } from '../../src/errors';
import { parsePythonList } from '../../src/data/python-literal';

test('parsePythonList: repr() output as pandas writes it', () => {
  assert.deepEqual(parsePythonList("['A', \"B's\"]"), ['A', "B's"]);
  assert.deepEqual(parsePythonList('[]'), []);
  assert.deepEqual(parsePythonList(''), []);
  assert.deepEqual(parsePythonList('  '), []);
  assert.deepEqual(parsePythonList("['Paris, France']"), ['Paris, France']);
  assert.deepEqual(parsePythonList(" [ 'a' ,'b', ] "), ['a', 'b']);
  assert.deepEqual(parsePythonList("('a', 'b')"), ['a', 'b']);
});

test('parsePythonList: escapes and prefixes', () => {
  // repr('He said "hi" and it\'s') == 'He said "hi" and it\\'s'
  assert.deepEqual(parsePythonList(`['He said "hi" and it\\'s']`), [`He said "hi" and it's`]);
  assert.deepEqual(parsePythonList("['a\\\\b', 'tab\\there', 'nl\\n']"), ['a\\b', 'tab\there', 'nl\n']);
  assert.deepEqual(parsePythonList("['Z\\xfcrich', '\\u00e9t\\u00e9', '\\U0001F600', '\\101']"), ['Zürich', 'été', '😀', 'A']);
  assert.deepEqual(parsePythonList("['\\d+']"), ['\\d+']); // unknown escapes stay verbatim
  assert.deepEqual(parsePythonList("[u'uni', r'raw\\n', r'it\\'s']"), ['uni', 'raw\\n', "it\\'s"]);
  assert.deepEqual(parsePythonList("['''tri'ple''', \"\"\"dq\"\"\"]"), ["tri'ple", 'dq']);
  assert.deepEqual(parsePythonList("['con' 'cat', 'x']"), ['concat', 'x']);
  assert.deepEqual(parsePythonList("['Zürich', '東京']"), ['Zürich', '東京']);
  assert.deepEqual(parsePythonList('[1961, -2.5]'), ['1961', '-2.5']);
});

test('parsePythonList: malformed input names where it came from', () => {
  for (const bad of ["['a'", "'a'", "['a' 'b", "['a'] x", "['a', None]", "[b'x']", "['a',, 'b']"]) {
    assert.throws(
      () => parsePythonList(bad, 'q.csv row 3 column possible_answers'),
      (e: unknown) => e instanceof InputError && /q\.csv row 3 column possible_answers/.test(e.message),
      bad,
    );
  }
});
