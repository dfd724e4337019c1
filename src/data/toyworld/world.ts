// The toyworld's knowledge graph: made-up entities of the four PopVQA types, their names and aliases,
// their visual identities, and facts drawn from small shared answer vocabularies. The world is
// consistent (a city lies in one country; architects, painters and founders are people of the world with
// that occupation; works date from after their maker's birth), so facts can be chained.

import type { EntityType } from '../popvqa';
import { ENTITY_TYPES, identificationPrompt } from '../popvqa';
import { type Rng, hashSeed, mulberry32, pick, randInt, shuffled } from '../random';
import { type Identity, LANDMARK_KINDS, drawIdentities } from './images';
import { WordMint, balancedPairs, poolSize } from './names';
import { CAPTIONS, COT_SUFFIX, IMAGE_REFERENT, RELATIONS } from './templates';

export interface ToyEntity {
  type: EntityType;
  sUri: string;
  subject: string;
  aliases: string[];
  /** The words of the subject, in order. */
  nameWords: string[];
  identity: Identity;
  /** Relation id → possible answers; the first is the canonical answer used in statements. */
  facts: Record<string, string[]>;
}

export interface ToyVocabularies {
  countries: string[];
  /** City → its country. */
  cities: Record<string, string>;
  occupations: string[];
  decades: string[];
  museums: string[];
  styles: string[];
  /** Industry → the products its brands are known for. */
  industries: Record<string, string[]>;
  /** Name words by pool, to show how words are shared between entities. */
  namePools: Record<string, string[]>;
}

export interface ToyWorld {
  seed: number;
  entitiesPerType: number;
  entities: ToyEntity[];
  vocabularies: ToyVocabularies;
}

const OCCUPATIONS = ['painter', 'architect', 'entrepreneur', 'singer', 'actor', 'writer', 'chemist', 'athlete'];
const STYLES = ['cubism', 'impressionism', 'surrealism', 'realism', 'romanticism', 'expressionism'];
const INDUSTRIES: Record<string, string[]> = {
  automotive: ['cars', 'trucks', 'motorcycles'],
  footwear: ['sneakers', 'boots', 'sandals'],
  beverage: ['coffee', 'juice', 'soda'],
  software: ['games', 'browsers', 'spreadsheets'],
  cosmetics: ['perfume', 'lipstick', 'shampoo'],
  electronics: ['phones', 'cameras', 'televisions'],
};
const DECADES = Array.from({ length: 22 }, (_, i) => `${1800 + 10 * i}s`);
/** People are born 1800s..1960s, so works 2-5 decades later still fall inside DECADES. */
const BIRTH_DECADES = DECADES.slice(0, 17);
const MUSEUM_KINDS = ['Museum', 'Gallery'];

/** Builds the world for a seed. Pure: the same arguments give the same world. */
export function buildWorld(seed: number, entitiesPerType: number): ToyWorld {
  if (!Number.isInteger(entitiesPerType) || entitiesPerType < 4) {
    throw new RangeError(`buildWorld: entitiesPerType must be an integer ≥ 4, got ${entitiesPerType}.`);
  }
  const n = entitiesPerType;
  const sub = (part: string): Rng => mulberry32(hashSeed(seed, part));
  const mint = new WordMint(sub('words'), reservedWords());

  const countries = mint.words(6, 3);
  const cities: Record<string, string> = {};
  for (const country of countries) for (const city of mint.words(2, 2)) cities[city] = country;
  const museums = mint.words(8, 2).map((w, i) => `${w} ${MUSEUM_KINDS[i % 2]}`);
  const p = poolSize(n);
  const namePools = {
    givenNames: mint.words(p),
    surnames: mint.words(p),
    middleNames: mint.words(Math.max(2, Math.ceil(n / 8))),
    landmarkWords: mint.words(p),
    paintingFirst: mint.words(p),
    paintingSecond: mint.words(p),
    brandFirst: mint.words(p),
    brandSecond: mint.words(p),
  };
  const vocabularies: ToyVocabularies = {
    countries,
    cities,
    occupations: OCCUPATIONS,
    decades: DECADES,
    museums,
    styles: STYLES,
    industries: INDUSTRIES,
    namePools,
  };

  const celebs = makeCelebs(sub('celebs'), n, vocabularies);
  const landmarks = makeLandmarks(sub('landmarks'), n, vocabularies, celebs);
  const paintings = makePaintings(sub('paintings'), n, vocabularies, celebs);
  const brands = makeBrands(sub('brands'), n, vocabularies, celebs);
  const entities = [...celebs, ...landmarks, ...paintings, ...brands];
  entities.forEach((e, i) => (e.sUri = `TW${String(i + 1).padStart(4, '0')}`));
  return { seed, entitiesPerType: n, entities, vocabularies };
}

/** The canonical answer of a fact. */
export function canonical(e: ToyEntity, relation: string): string {
  return e.facts[relation][0];
}

function makeCelebs(rng: Rng, n: number, v: ToyVocabularies): ToyEntity[] {
  const { givenNames, surnames, middleNames } = v.namePools;
  const pairs = shuffled(rng, balancedPairs(rng, n, givenNames.length, surnames.length));
  const names: string[][] = [];
  // About one person in four gets a middle name; two people never share two name words, so the
  // PopVQA rule (≥ 2 shared long words) cannot mistake one person for another.
  pairs.forEach(([g, s], k) => {
    const base = [givenNames[g], surnames[s]];
    if (k % 4 === 3) {
      const m = middleNames.find((mid) => names.every((other) => overlap(other, [base[0], mid, base[1]]) <= 1));
      if (m) {
        names.push([base[0], m, base[1]]);
        return;
      }
    }
    names.push(base);
  });
  // Painters, architects and entrepreneurs first, so every world has makers for the other types.
  const occupations = dealer(rng, OCCUPATIONS, 3);
  const cities = dealer(rng, Object.keys(v.cities));
  const decades = dealer(rng, BIRTH_DECADES);
  const identities = drawIdentities(rng, 'celebs', n);
  return names.map((words, k) => {
    const city = cities();
    return entity('celebs', words, words.length === 3 ? [`${words[0]} ${words[2]}`] : [], identities[k], {
      birth_city: [city],
      citizenship: [v.cities[city]],
      occupation: [occupations()],
      birth_decade: decadeAnswers(decades()),
    });
  });
}

function makeLandmarks(rng: Rng, n: number, v: ToyVocabularies, people: ToyEntity[]): ToyEntity[] {
  const words = v.namePools.landmarkWords;
  const pairs = shuffled(rng, balancedPairs(rng, n, words.length, LANDMARK_KINDS.length));
  const identities = drawIdentities(
    rng,
    'landmarks',
    n,
    pairs.map(([, kind]) => ({ kind: LANDMARK_KINDS[kind] })),
  );
  const architects = dealer(rng, makers(people, 'architect'));
  const cities = dealer(rng, Object.keys(v.cities));
  return pairs.map(([w, kind], k) => {
    const name = [words[w], LANDMARK_KINDS[kind]];
    const architect = architects();
    const city = cities();
    return entity('landmarks', name, [`the ${name.join(' ')}`], identities[k], {
      country: [v.cities[city]],
      city: [city],
      architect: personAnswers(architect),
      built_decade: decadeAnswers(laterDecade(rng, architect, 3, 5)),
    });
  });
}

function makePaintings(rng: Rng, n: number, v: ToyVocabularies, people: ToyEntity[]): ToyEntity[] {
  const { paintingFirst, paintingSecond } = v.namePools;
  const pairs = shuffled(rng, balancedPairs(rng, n, paintingFirst.length, paintingSecond.length));
  const identities = drawIdentities(rng, 'paintings', n);
  const painters = dealer(rng, makers(people, 'painter'));
  const museums = dealer(rng, v.museums);
  const styles = dealer(rng, v.styles);
  return pairs.map(([a, b], k) => {
    const painter = painters();
    const museum = museums();
    return entity('paintings', [paintingFirst[a], paintingSecond[b]], [], identities[k], {
      painter: personAnswers(painter),
      museum: [museum, `the ${museum}`],
      painted_decade: decadeAnswers(laterDecade(rng, painter, 2, 5)),
      style: [styles()],
    });
  });
}

function makeBrands(rng: Rng, n: number, v: ToyVocabularies, people: ToyEntity[]): ToyEntity[] {
  const { brandFirst, brandSecond } = v.namePools;
  const pairs = shuffled(rng, balancedPairs(rng, n, brandFirst.length, brandSecond.length));
  const identities = drawIdentities(rng, 'brands', n);
  const founders = dealer(rng, makers(people, 'entrepreneur'));
  const countries = dealer(rng, v.countries);
  const industries = dealer(rng, Object.keys(v.industries));
  return pairs.map(([a, b], k) => {
    const industry = industries();
    return entity('brands', [brandFirst[a], brandSecond[b]], [], identities[k], {
      country: [countries()],
      founder: personAnswers(founders()),
      industry: [industry],
      product: [pick(rng, v.industries[industry])],
    });
  });
}

function entity(type: EntityType, nameWords: string[], aliases: string[], identity: Identity, facts: Record<string, string[]>): ToyEntity {
  return { type, sUri: '', subject: nameWords.join(' '), aliases, nameWords, identity, facts };
}

function makers(people: ToyEntity[], occupation: string): ToyEntity[] {
  return people.filter((p) => p.facts.occupation[0] === occupation);
}

function personAnswers(p: ToyEntity): string[] {
  return [p.subject, ...p.aliases];
}

function decadeAnswers(decade: string): string[] {
  return [decade, `the ${decade}`];
}

function laterDecade(rng: Rng, maker: ToyEntity, min: number, max: number): string {
  const born = DECADES.indexOf(maker.facts.birth_decade[0]);
  return DECADES[Math.min(DECADES.length - 1, born + randInt(rng, min, max))];
}

function overlap(a: string[], b: string[]): number {
  return a.filter((w) => b.includes(w)).length;
}

/**
 * Deals items in rounds, each round a fresh shuffle, so every value recurs about equally often.
 * The first `keepFirst` items lead the first round (in random order).
 */
function dealer<T>(rng: Rng, items: readonly T[], keepFirst = 0): () => T {
  if (items.length === 0) throw new RangeError('dealer: nothing to deal');
  let deck = [...shuffled(rng, items.slice(0, keepFirst)), ...shuffled(rng, items.slice(keepFirst))];
  return () => {
    if (deck.length === 0) deck = shuffled(rng, items);
    return deck.shift()!;
  };
}

/** Every English word of the templates and vocabularies, so made-up words never collide with one. */
function reservedWords(): string[] {
  const texts: string[] = [
    ...Object.values(RELATIONS).flatMap((rels) => rels.flatMap((r) => [r.question, ...r.statements])),
    ...Object.values(CAPTIONS).flat(),
    ...Object.values(COT_SUFFIX),
    ...Object.values(IMAGE_REFERENT),
    ...ENTITY_TYPES.flatMap((t) => Object.values(identificationPrompt(t))),
    ...OCCUPATIONS,
    ...STYLES,
    ...Object.entries(INDUSTRIES).flat(2),
    ...LANDMARK_KINDS,
    ...MUSEUM_KINDS,
    'USER ASSISTANT image company',
  ];
  return texts.flatMap((t) => t.match(/[A-Za-z]+/g) ?? []);
}
