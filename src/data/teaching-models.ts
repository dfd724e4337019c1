// The built-in teaching models by name (data/teaching/README.md), for the library's loadModel, the kernel's
// %load (and its completion) and the CLI: one list. Light on purpose (the kernel reads it at start).
import * as path from 'node:path';

/** The default teaching model's folder (src/train writes it there). */
export const TEACHING_DIR = path.resolve(__dirname, '..', '..', 'data', 'teaching');

/** The data every teaching model was trained on: `%load teaching…` brings it along. */
export const TEACHING_DATA_DIR = path.resolve(__dirname, '..', '..', 'data', 'toyworld');

/**
 * Name -> folder. Only `teaching` (v5) is built; the early/late pair of issue 15 is not shipped yet
 * (data/teaching/README.md, session 6), and a name is added here when its folder is.
 */
export const TEACHING_MODELS: Readonly<Record<string, string>> = {
  teaching: TEACHING_DIR,
};
