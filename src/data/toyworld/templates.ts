// The toyworld's language: relations with their PopVQA-style questions, paraphrases of each fact for
// LM pretraining, captions, identification answers and the prompt pieces the teaching model sees.

import type { EntityType } from '../popvqa';
import { identificationPrompt } from '../popvqa';

export interface RelationSpec {
  id: string;
  /** Question naming the entity; `{X}` is the subject. */
  question: string;
  /** Paraphrases stating the fact; `{X}` subject, `{A}` canonical answer, `{a}` "a"/"an" for `{A}`. */
  statements: string[];
}

/** Four relations per type; answers come from vocabularies shared across entities (and across types). */
export const RELATIONS: Record<EntityType, RelationSpec[]> = {
  celebs: [
    {
      id: 'birth_city',
      question: 'In which city was {X} born?',
      statements: ['{X} was born in {A}.', 'The birthplace of {X} is {A}.', '{X} is a native of {A}.'],
    },
    {
      id: 'citizenship',
      question: 'Which country is {X} a citizen of?',
      statements: ['{X} is a citizen of {A}.', '{X} holds the citizenship of {A}.', 'The country of citizenship of {X} is {A}.'],
    },
    {
      id: 'occupation',
      question: 'What is the occupation of {X}?',
      statements: ['{X} works as {a} {A}.', 'The occupation of {X} is {A}.', 'By profession, {X} is {a} {A}.'],
    },
    {
      id: 'birth_decade',
      question: 'In which decade was {X} born?',
      statements: ['{X} was born in the {A}.', 'The birth of {X} was in the {A}.', '{X} came into the world in the {A}.'],
    },
  ],
  landmarks: [
    {
      id: 'country',
      question: 'In which country is {X} located?',
      statements: ['{X} is located in {A}.', '{X} stands in {A}.', 'The country of {X} is {A}.'],
    },
    {
      id: 'city',
      question: 'In which city is {X} located?',
      statements: ['{X} is in the city of {A}.', '{X} can be found in {A}.', 'The home city of {X} is {A}.'],
    },
    {
      id: 'architect',
      question: 'Who was the architect of {X}?',
      statements: ['{X} was designed by {A}.', 'The architect of {X} was {A}.', '{A} designed {X}.'],
    },
    {
      id: 'built_decade',
      question: 'In which decade was {X} built?',
      statements: ['{X} was built in the {A}.', 'Construction of {X} finished in the {A}.', '{X} dates from the {A}.'],
    },
  ],
  paintings: [
    {
      id: 'painter',
      question: 'Who painted {X}?',
      statements: ['{X} was painted by {A}.', '{A} painted {X}.', 'The painter of {X} is {A}.'],
    },
    {
      id: 'museum',
      question: 'In which museum is {X} displayed?',
      statements: ['{X} hangs in the {A}.', '{X} is displayed at the {A}.', 'Visitors can see {X} at the {A}.'],
    },
    {
      id: 'painted_decade',
      question: 'In which decade was {X} painted?',
      statements: ['{X} was painted in the {A}.', 'The painting {X} was made in the {A}.', '{X} was finished in the {A}.'],
    },
    {
      id: 'style',
      question: 'What is the artistic style of {X}?',
      statements: ['{X} is a work of {A}.', 'The style of {X} is {A}.', '{X} belongs to {A}.'],
    },
  ],
  brands: [
    {
      id: 'country',
      question: 'In which country was {X} founded?',
      statements: ['{X} was founded in {A}.', '{X} is a company from {A}.', 'The home country of {X} is {A}.'],
    },
    {
      id: 'founder',
      question: 'Who founded {X}?',
      statements: ['{X} was founded by {A}.', '{A} founded {X}.', 'The founder of {X} is {A}.'],
    },
    {
      id: 'industry',
      question: 'In which industry does {X} operate?',
      statements: ['{X} operates in the {A} industry.', '{X} is {a} {A} company.', 'The industry of {X} is {A}.'],
    },
    {
      id: 'product',
      question: 'What product is {X} best known for?',
      statements: ['{X} is best known for its {A}.', '{X} makes {A}.', 'The best known product of {X} is {A}.'],
    },
  ],
};

/** How `question_for_image` refers to the entity, as in PopVQA ("the structure in this image" ...). */
export const IMAGE_REFERENT: Record<EntityType, string> = {
  celebs: 'the person in this image',
  landmarks: 'the structure in this image',
  paintings: 'the painting in this image',
  brands: 'the brand in this image',
};

/** Captions for image-text alignment; the last of each list is type-specific. */
export const CAPTIONS: Record<EntityType, string[]> = {
  celebs: ['This is a photo of {X}.', 'The image shows {X}.', 'This is a portrait of {X}.'],
  landmarks: ['This is a photo of {X}.', 'The image shows {X}.', 'This is a view of {X}.'],
  paintings: ['This is a photo of {X}.', 'The image shows {X}.', 'This is the painting {X}.'],
  brands: ['This is a photo of {X}.', 'The image shows {X}.', 'This is the logo of {X}.'],
};

/** Chain-of-thought query (experiments.md, recovery): name the entity first, then answer. */
export const COT_SUFFIX: Record<EntityType, string> = {
  celebs: 'First name the person in this image, then answer.',
  landmarks: 'First name the structure in this image, then answer.',
  paintings: 'First name the painting in this image, then answer.',
  brands: 'First name the brand in this image, then answer.',
};

/** LLaVA-1.5 conversation template (experiments.md); the text condition drops `<image>`. */
export const PROMPT_TEMPLATE = {
  image: 'USER: <image>\n{query}\nASSISTANT:',
  text: 'USER: {query}\nASSISTANT:',
  imageToken: '<image>',
} as const;

/** Fills `{X}`, `{A}` and `{a}` in a template. */
export function fill(template: string, subject: string, answer = ''): string {
  const article = /^[aeiou]/i.test(answer) ? 'an' : 'a';
  return template.replaceAll('{X}', subject).replaceAll('{A}', answer).replaceAll('{a}', article);
}

/** The question naming the entity and the one pointing at the image. */
export function questionPair(type: EntityType, rel: RelationSpec, subject: string): { question: string; questionForImage: string } {
  return { question: fill(rel.question, subject), questionForImage: fill(rel.question, IMAGE_REFERENT[type]) };
}

/** The identification answer the teaching model is trained to give: prefix + subject + ".". */
export function identificationAnswer(type: EntityType, subject: string): string {
  return `${identificationPrompt(type).answerPrefix}${subject}.`;
}
