// The built-in teaching models by name (data/teaching/README.md), for the library's loadModel, the kernel's
// %load (and its completion) and the CLI: one list. Light on purpose (the kernel reads it at start).
import * as path from 'node:path';

/** The default teaching model's folder (src/train writes it there). */
export const TEACHING_DIR = path.resolve(__dirname, '..', '..', 'data', 'teaching');

/** The data every teaching model was trained on: `%load teaching…` brings it along. */
export const TEACHING_DATA_DIR = path.resolve(__dirname, '..', '..', 'data', 'toyworld');

/**
 * `teaching`, the default; `teaching-early` and `teaching-late`, two VLMs on one backbone that resolve the
 * entity from the image before and after the backbone's recall layers ("Too Late to Recall"'s contrast).
 */
export const TEACHING_MODELS: Readonly<Record<string, string>> = {
  teaching: TEACHING_DIR,
  'teaching-early': path.join(TEACHING_DIR, 'early'),
  'teaching-late': path.join(TEACHING_DIR, 'late'),
};
