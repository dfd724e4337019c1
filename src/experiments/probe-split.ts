// Leak-free probe examples: identical prompts are kept once, and the train/test split is made over
// groups (one group per image for image prompts, one per prompt for text prompts), so no image and no
// input-id sequence is ever on both sides. With one image per entity (real PopVQA has no views) every
// image prompt of an entity carries the same image before the question, and attention is causal: the
// residual at an image position is the same vector in all of them. An entity-identity probe there can
// only be tested on an image it was trained on, so it is refused rather than reported at accuracy 1.0.
import { InputError } from '../errors';
import { mulberry32, shuffled } from '../data/random';
import type { Modality, PromptCase } from './source';

export interface ProbeSplit {
  /** What a group is: 'image' (every prompt on one image together), 'view' (the data's own split), 'prompt'. */
  by: 'image' | 'view' | 'prompt';
  trainPrompts: number;
  testPrompts: number;
  /** Prompts whose (image, input ids) occur on both sides (0 by construction; measured, not assumed). */
  sharedPrompts: number;
  /** Images used on both sides (image prompts; 0 by construction). */
  sharedImages: number;
  /** Identical prompts dropped before splitting. */
  duplicatesDropped: number;
}

// A prompt is its image (the pixels are part of the input: two views share token ids) and its input ids.
const idsKey = (c: PromptCase) => `${c.image ?? ''}|${c.inputIds.join(',')}`;

/** One copy of each distinct (input ids, image) prompt, first kept. */
export function dedupePrompts(cases: readonly PromptCase[]): PromptCase[] {
  const seen = new Set<string>();
  return cases.filter((c) => {
    const k = idsKey(c);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Group of a prompt for the split: its image (image prompts) or its input ids (text prompts). */
export function groupOf(c: PromptCase): string {
  return c.image !== null ? `image:${c.image}` : `ids:${idsKey(c)}`;
}

/**
 * Throws when an image-position identity probe would have to test on training images: fewer than two
 * distinct images for some entity.
 */
export function checkImageIdentityProbe(cases: readonly PromptCase[], target: string, position: string): void {
  if (target !== 'entity') return;
  const images = new Map<string, Set<string>>();
  for (const c of cases) if (c.image !== null) images.set(c.entity.key, (images.get(c.entity.key) ?? new Set()).add(c.image));
  const short = [...images.entries()].filter(([, s]) => s.size < 2).map(([k]) => k);
  if (short.length === 0) return;
  throw new InputError(
    `probe: an entity-identity probe on image prompts (position "${position}") needs at least 2 distinct images per entity, ` +
      `and ${short.length} of ${images.size} entities have one (e.g. ${JSON.stringify(short[0])}). With one image, every image prompt of an ` +
      'entity has the same residual at the image positions (the image comes first; attention is causal), so a held-out prompt repeats a ' +
      'training one and the accuracy means nothing. Use data with several views per entity (a views.csv with s_uri, view, split, path, as ' +
      'toyworld ships), probe an attribute shared across entities (target "type" or an entities.csv column), or probe text prompts (modality "text").',
  );
}

/**
 * Train/test split over groups, stratified by label: the data's own split when every prompt carries
 * one (views with disjoint images), else a seeded choice of whole groups per label.
 */
export function splitByGroup(cases: readonly PromptCase[], labels: readonly string[], testFraction: number, seed: number): { isTest: boolean[]; by: ProbeSplit['by'] } {
  if (cases.length > 0 && cases.every((c) => c.split === 'train' || c.split === 'test')) return { isTest: cases.map((c) => c.split === 'test'), by: 'view' };
  const groups = new Map<string, { label: string; idx: number[] }>();
  cases.forEach((c, i) => {
    const g = groupOf(c);
    const slot = groups.get(g) ?? { label: labels[i], idx: [] };
    slot.idx.push(i);
    groups.set(g, slot);
  });
  const byLabel = new Map<string, string[]>();
  for (const [g, { label }] of groups) byLabel.set(label, [...(byLabel.get(label) ?? []), g]);
  const rng = mulberry32(seed + 1);
  const isTest = new Array<boolean>(cases.length).fill(false);
  for (const gs of byLabel.values()) {
    if (gs.length < 2) continue;
    const k = Math.min(gs.length - 1, Math.max(1, Math.round(gs.length * testFraction)));
    for (const g of shuffled(rng, gs).slice(0, k)) for (const i of groups.get(g)!.idx) isTest[i] = true;
  }
  return { isTest, by: cases.some((c) => c.image !== null) ? 'image' : 'prompt' };
}

/** The split as reported, with the overlap measured on both input ids and images. */
export function describeSplit(cases: readonly PromptCase[], isTest: readonly boolean[], by: ProbeSplit['by'], duplicatesDropped: number): ProbeSplit {
  const side = (test: boolean, f: (c: PromptCase) => string | null) => new Set(cases.filter((_, i) => isTest[i] === test).map(f).filter((x): x is string => x !== null));
  const trainIds = side(false, idsKey);
  const testIds = side(true, idsKey);
  const trainImages = side(false, (c) => c.image);
  const testImages = side(true, (c) => c.image);
  const testPrompts = isTest.filter(Boolean).length;
  return {
    by,
    trainPrompts: cases.length - testPrompts,
    testPrompts,
    sharedPrompts: cases.filter((c, i) => isTest[i] && trainIds.has(idsKey(c))).length + cases.filter((c, i) => !isTest[i] && testIds.has(idsKey(c))).length,
    sharedImages: [...testImages].filter((im) => trainImages.has(im)).length,
    duplicatesDropped,
  };
}

export type { Modality };
