// What produced a result: every summary carries `summary.protocol` (template, identification prompt,
// answer prefix, token budgets, answer-match rule, Wilcoxon settings), so a table can be read without the
// code. The defaults follow the PopVQA authors' code (github ido-co/vlm-modality-gap); each departure is
// a named spec option (docs/experiments.md lists them).
import { GENERIC_IDENTIFICATION, identificationPrompt, ENTITY_TYPES, type EntityType } from '../data/popvqa';
import { WILCOXON_DEFAULTS } from '../data/stats';
import { ruleLabel } from './context';
import type { SpecBase } from './spec';
import type { EntityRef, PromptSource } from './source';

/**
 * Templates whose authors' rendering has no `{prefix}` slot: LLaVA-1.5 (setup.py:105, get_prompt formats
 * a string without the placeholder) and LLaVA-MORE (setup_more.py:26-31; cross_patch_more.py:72-73 and
 * fwd_patch_more.py:37-38 discard the prefix). On these the authors' patching prompts carry no prefix.
 */
const NO_PREFIX_TEMPLATES = new Set(['llava-1.5', 'llama-3-more']);

export type PatchPrefix = 'authors' | 'on' | 'off';

/**
 * Whether patching prompts (cross-patch, freeze) carry the type's answer prefix. 'authors': as their
 * code renders it (cross_patch.py:97 and fwd_patch.py:39 pass the prefix; the template may drop it).
 */
export function patchPrefixOn(mode: PatchPrefix | undefined, template: string | undefined): boolean {
  if (mode === 'on') return true;
  if (mode === 'off') return false;
  return !NO_PREFIX_TEMPLATES.has(template ?? '');
}

export interface ProtocolOptions {
  entities: readonly EntityRef[];
  /** Identification queries carry the answer prefix. */
  prefix: boolean;
  /** Cross-type pairs use the generic query (cross-patching). */
  generic?: boolean;
  maxNewTokens: { identify: number | null; answer: number | null; patch: number | null };
  /** Whether p-values are reported (Wilcoxon settings then shown). */
  wilcoxon?: boolean;
  extra?: Record<string, unknown>;
}

/** `summary.protocol`: what a reader needs to know to reproduce (or compare) the numbers. */
export function protocolSummary(source: PromptSource, spec: SpecBase, o: ProtocolOptions): Record<string, unknown> {
  const raw = source.kind === 'raw';
  const types = [...new Set(o.entities.map((e) => e.type))].filter((t): t is EntityType => (ENTITY_TYPES as readonly string[]).includes(t)).sort();
  const queries: Record<string, string> = {};
  const prefixes: Record<string, string> = {};
  for (const t of types) {
    const q = identificationPrompt(t);
    queries[t] = q.query;
    prefixes[t] = q.answerPrefix;
  }
  if (o.generic) {
    queries.crossType = GENERIC_IDENTIFICATION.query;
    prefixes.crossType = GENERIC_IDENTIFICATION.answerPrefix;
  }
  return {
    template: source.template ?? spec.template ?? null,
    identificationPrompt: raw ? 'pre-tokenised' : queries,
    answerPrefix: raw ? 'pre-tokenised' : o.prefix ? prefixes : null,
    maxNewTokens: o.maxNewTokens,
    match: ruleLabel(spec.match),
    wilcoxon: o.wilcoxon ? { ...WILCOXON_DEFAULTS } : null,
    ...o.extra,
  };
}
