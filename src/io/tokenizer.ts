// Loading HF tokenizers (tokenizer.json + tokenizer_config.json) with @huggingface/tokenizers,
// a pure-JS port of the Rust `tokenizers` library: no network, no native code.
import { existsSync, readFileSync } from 'fs';
import * as path from 'path';
import { Tokenizer } from '@huggingface/tokenizers';
import { CheckpointError, InputError } from '../errors';

type Json = Record<string, unknown>;

export interface EncodeOptions {
  /** Apply the tokenizer's post-processor (BOS for Llama-family tokenizers). Default true. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
  /** Override tokenizer_config's `clean_up_tokenization_spaces`. */
  cleanUpSpaces?: boolean;
}

/** tokenizer_config.json stores special tokens as plain strings or as serialised AddedToken objects. */
function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}

function readJson(file: string, what: string): Json {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CheckpointError(`${what} "${file}" cannot be read: ${(e as Error).message}`);
  }
  try {
    const v: unknown = JSON.parse(text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('top level is not an object');
    return v as Json;
  } catch (e) {
    throw new CheckpointError(`${what} "${file}" is not valid JSON: ${(e as Error).message}`);
  }
}

/** A loaded tokenizer with the ids the prompt builder and generation loop need. */
export class TextTokenizer {
  readonly bosToken?: string;
  readonly eosToken?: string;
  readonly padToken?: string;
  readonly unkToken?: string;
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
  readonly padTokenId?: number;
  readonly unkTokenId?: number;
  /** Largest id + 1 over the vocabulary and added tokens. */
  readonly vocabSize: number;
  private readonly inner: Tokenizer;
  private readonly specialIds: Set<number>;
  private readonly addedContents: Set<string>;

  constructor(
    readonly tokenizerJson: Json,
    readonly tokenizerConfig: Json = {},
    readonly source = 'tokenizer.json',
  ) {
    if (!tokenizerJson.model || typeof tokenizerJson.model !== 'object')
      throw new CheckpointError(`${source}: "model" section is missing; is this a HF tokenizer.json?`);
    // The library iterates these keys unconditionally; older files omit some.
    const tj: Json = { added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...tokenizerJson };
    try {
      this.inner = new Tokenizer(tj, tokenizerConfig);
    } catch (e) {
      throw new CheckpointError(`${source} cannot be loaded by @huggingface/tokenizers: ${(e as Error).message}`);
    }
    const added = Array.isArray(tj.added_tokens) ? (tj.added_tokens as Json[]) : [];
    this.specialIds = new Set(added.filter((t) => t.special === true && typeof t.id === 'number').map((t) => t.id as number));
    this.addedContents = new Set(added.filter((t) => typeof t.content === 'string').map((t) => t.content as string));
    const idOf = (tok: string | undefined) => (tok === undefined ? undefined : this.inner.token_to_id(tok));
    this.bosToken = tokenString(tokenizerConfig.bos_token);
    this.eosToken = tokenString(tokenizerConfig.eos_token);
    this.padToken = tokenString(tokenizerConfig.pad_token);
    this.unkToken = tokenString(tokenizerConfig.unk_token);
    this.bosTokenId = idOf(this.bosToken);
    this.eosTokenId = idOf(this.eosToken);
    this.padTokenId = idOf(this.padToken);
    this.unkTokenId = idOf(this.unkToken);
    let maxId = -1;
    for (const id of this.inner.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new InputError(`encode: text must be a string, got ${typeof text}`);
    return this.inner.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  /** Token strings as the model sees them (e.g. "▁Paris", "ĠParis"). */
  tokenize(text: string, opts: EncodeOptions = {}): string[] {
    return this.inner.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).tokens;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    if (ids.length === 0) return '';
    for (const id of ids)
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize)
        throw new InputError(`decode: id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
    const o: { skip_special_tokens: boolean; clean_up_tokenization_spaces?: boolean } = {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
    };
    if (opts.cleanUpSpaces !== undefined) o.clean_up_tokenization_spaces = opts.cleanUpSpaces;
    return this.inner.decode([...ids], o);
  }

  tokenToId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.inner.id_to_token(id);
  }

  /** Id of a token that must exist (special tokens named by templates and configs). */
  requireId(token: string, what = 'token'): number {
    const id = this.inner.token_to_id(token);
    if (id === undefined) throw new InputError(`${what} "${token}" is not in the vocabulary of ${this.source}`);
    return id;
  }

  isSpecialId(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** True when `content` is an added token, so the text splitter keeps it whole. */
  isAddedToken(content: string): boolean {
    return this.addedContents.has(content);
  }
}

/**
 * Loads `tokenizer.json` (required) and `tokenizer_config.json` (optional; `special_tokens_map.json`
 * fills bos/eos/pad/unk it lacks) from a model folder.
 */
export function loadTokenizer(dir: string): TextTokenizer {
  const tjPath = path.join(dir, 'tokenizer.json');
  if (!existsSync(tjPath)) {
    const hasSlow = ['tokenizer.model', 'vocab.json'].filter((f) => existsSync(path.join(dir, f)));
    throw new CheckpointError(
      `no tokenizer.json in "${dir}"` +
        (hasSlow.length ? ` (found ${hasSlow.join(', ')}: convert to the fast format with transformers' AutoTokenizer(...).save_pretrained)` : '') +
        '; hopscope reads only the HF fast-tokenizer file',
    );
  }
  const tokenizerJson = readJson(tjPath, 'tokenizer file');
  const cfgPath = path.join(dir, 'tokenizer_config.json');
  const config: Json = existsSync(cfgPath) ? readJson(cfgPath, 'tokenizer config') : {};
  const mapPath = path.join(dir, 'special_tokens_map.json');
  if (existsSync(mapPath)) {
    const map = readJson(mapPath, 'special tokens map');
    for (const k of ['bos_token', 'eos_token', 'pad_token', 'unk_token'])
      if ((config[k] === undefined || config[k] === null) && map[k] !== undefined) config[k] = map[k];
  }
  return new TextTokenizer(tokenizerJson, config, tjPath);
}
