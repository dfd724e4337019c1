// The built-in teaching models by name (data/teaching/README.md), for the library's loadModel, the kernel's
// %load (and its completion), the CLI, the demo and the tests: one list. Light on purpose (the kernel reads it
// at start).
import * as path from 'node:path';

/** Where the teaching models live: one folder per model, the early / late pair's shared backbone beside them. */
export const TEACHING_ROOT = path.resolve(__dirname, '..', '..', 'data', 'teaching');

/** The data every teaching model was trained on: `%load teaching…` brings it along. */
export const TEACHING_DATA_DIR = path.resolve(__dirname, '..', '..', 'data', 'toyworld');

/**
 * Name -> folder (issue 15). `teaching-late` and `teaching-early` are one 12-layer backbone (`data/teaching/backbone`)
 * and two recipes that differ mainly in the block where grounding puts the entity into the image's states, 5 or 1
 * (`data/teaching/recipes/`): the late one resolves the entity after the backbone's recall deadline, the early
 * one before it, the contrast "Too Late to Recall" draws. `teaching`, the default, is the late one: the
 * VLM with the gap the papers study, as LLaVA-1.5 is. `teaching-v5` is the first build's model (its own
 * backbone inside its folder), which the paper notebooks were written on.
 */
export const TEACHING_MODELS = {
  teaching: path.join(TEACHING_ROOT, 'late'),
  'teaching-late': path.join(TEACHING_ROOT, 'late'),
  'teaching-early': path.join(TEACHING_ROOT, 'early'),
  'teaching-v5': path.join(TEACHING_ROOT, 'v5'),
} as const satisfies Readonly<Record<string, string>>;

export type TeachingModelName = keyof typeof TEACHING_MODELS;

/** The default teaching model's folder (`teaching`). */
export const TEACHING_DIR: string = TEACHING_MODELS.teaching;

/** The model `hopscope demo` draws next to the default in every section: the early one, the contrast. */
export const TEACHING_COMPARE_DIR: string = TEACHING_MODELS['teaching-early'];

/** Whether `name` is a teaching model's name (own keys only: `constructor` is not one). */
export function isTeachingModel(name: string): name is TeachingModelName {
  return Object.prototype.hasOwnProperty.call(TEACHING_MODELS, name);
}

/** A teaching model's name -> its folder; anything else is taken as a folder and returned as it is. */
export function teachingModelDir(nameOrDir: string): string {
  return isTeachingModel(nameOrDir) ? TEACHING_MODELS[nameOrDir] : nameOrDir;
}

/** Whether `dir` is a teaching model's folder (however the path is written). */
export function isTeachingDir(dir: string): boolean {
  const d = path.resolve(dir);
  return Object.values(TEACHING_MODELS).some((t) => path.resolve(t) === d);
}
