// Parser for the Python list literals PopVQA stores in CSV cells ("['A', \"B's\"]"), written by pandas
// from Python lists, i.e. repr() output: what ast.literal_eval would accept for a flat list of strings.

import { InputError } from '../errors';

const SIMPLE_ESCAPES: Record<string, string> = {
  '\\': '\\',
  "'": "'",
  '"': '"',
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

/**
 * Parses a flat Python list (or tuple) of string literals; numbers are kept as their source text.
 * Accepts single, double and triple quotes, u/r prefixes, escapes (\\n, \\', \\xhh, \\uXXXX,
 * \\UXXXXXXXX, octal), implicit concatenation of adjacent literals and a trailing comma.
 * An empty or whitespace-only cell (pandas' NaN) is an empty list.
 * @param where names the file, row and column for the error message.
 */
export function parsePythonList(text: string, where = 'value'): string[] {
  if (text.trim() === '') return [];
  const parser = new ListParser(text, where);
  return parser.parseList();
}

class ListParser {
  private pos = 0;

  constructor(
    private readonly src: string,
    private readonly where: string,
  ) {}

  parseList(): string[] {
    this.skipSpace();
    const open = this.src[this.pos];
    if (open !== '[' && open !== '(') this.fail("expected a Python list starting with '['");
    const close = open === '[' ? ']' : ')';
    this.pos++;
    const items: string[] = [];
    this.skipSpace();
    while (this.src[this.pos] !== close) {
      items.push(this.parseItem());
      this.skipSpace();
      const c = this.src[this.pos];
      if (c === ',') {
        this.pos++;
        this.skipSpace();
      } else if (c !== close) {
        this.fail(c === undefined ? `unterminated list (missing '${close}')` : `expected ',' or '${close}'`);
      }
    }
    this.pos++;
    this.skipSpace();
    if (this.pos < this.src.length) this.fail('unexpected text after the closing bracket');
    return items;
  }

  private parseItem(): string {
    const number = /^[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?/.exec(this.src.slice(this.pos));
    if (number) {
      this.pos += number[0].length;
      return number[0];
    }
    let out = this.parseString();
    // Python joins adjacent literals: 'a' 'b' == 'ab'.
    for (;;) {
      const save = this.pos;
      this.skipSpace();
      if (!this.atStringStart()) {
        this.pos = save;
        return out;
      }
      out += this.parseString();
    }
  }

  private atStringStart(): boolean {
    const m = /^[uUrRbB]{0,2}['"]/.exec(this.src.slice(this.pos, this.pos + 3));
    return m !== null;
  }

  private parseString(): string {
    const prefix = /^[uUrRbB]{0,2}/.exec(this.src.slice(this.pos))![0];
    const raw = /[rR]/.test(prefix);
    if (/[bB]/.test(prefix)) this.fail('bytes literals are not text');
    this.pos += prefix.length;
    const q = this.src[this.pos];
    if (q !== "'" && q !== '"') this.fail('expected a quoted string, a number, or the end of the list');
    const triple = this.src.startsWith(q.repeat(3), this.pos);
    const quote = triple ? q.repeat(3) : q;
    this.pos += quote.length;
    let out = '';
    for (;;) {
      if (this.pos >= this.src.length) this.fail('unterminated string literal');
      if (this.src.startsWith(quote, this.pos)) {
        this.pos += quote.length;
        return out;
      }
      const c = this.src[this.pos];
      if (c === '\n' && !triple) this.fail('newline inside a single-quoted string');
      if (c !== '\\') {
        out += c;
        this.pos++;
        continue;
      }
      const next = this.src[this.pos + 1];
      if (next === undefined) this.fail('string ends with a backslash');
      if (raw) {
        // Raw strings keep the backslash, but it still stops the quote from closing the string.
        out += c + next;
        this.pos += 2;
        continue;
      }
      out += this.escape();
    }
  }

  /** Decodes the escape at this.pos (a backslash) and advances past it. */
  private escape(): string {
    const next = this.src[this.pos + 1];
    if (next in SIMPLE_ESCAPES) {
      this.pos += 2;
      return SIMPLE_ESCAPES[next];
    }
    if (next === '\n') {
      this.pos += 2;
      return '';
    }
    const hexLen = next === 'x' ? 2 : next === 'u' ? 4 : next === 'U' ? 8 : 0;
    if (hexLen > 0) {
      const hex = this.src.slice(this.pos + 2, this.pos + 2 + hexLen);
      if (!new RegExp(`^[0-9a-fA-F]{${hexLen}}$`).test(hex)) this.fail(`bad \\${next} escape`);
      const code = parseInt(hex, 16);
      if (code > 0x10ffff) this.fail(`\\${next}${hex} is not a Unicode code point`);
      this.pos += 2 + hexLen;
      return String.fromCodePoint(code);
    }
    const octal = /^[0-7]{1,3}/.exec(this.src.slice(this.pos + 1, this.pos + 4));
    if (octal) {
      this.pos += 1 + octal[0].length;
      return String.fromCodePoint(parseInt(octal[0], 8));
    }
    if (next === 'N') this.fail('\\N{...} named escapes are not supported');
    // Python keeps unknown escapes verbatim ('\d' is backslash + d).
    this.pos += 2;
    return '\\' + next;
  }

  private skipSpace(): void {
    while (this.pos < this.src.length && /\s/.test(this.src[this.pos])) this.pos++;
  }

  private fail(why: string): never {
    const shown = this.src.length > 80 ? this.src.slice(0, 77) + '...' : this.src;
    throw new InputError(
      `${this.where}: cannot parse ${JSON.stringify(shown)} as a Python list of strings: ${why} (at character ${this.pos}).`,
    );
  }
}
