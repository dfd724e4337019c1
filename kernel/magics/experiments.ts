// The experiment magics: flags → a spec `{kind, version: 1, ...}` → runExperiment (see experiment-runner.ts).
// Field names follow docs/experiments (camelCase); `--set key=value` reaches any field a flag does not cover,
// and the library's validateSpec names a wrong one.
import { type Command, Option } from 'commander';
import type { ExperimentSpec } from '../library';
import { addRunOptions, addSpecOptions, applySets, runOptionsOf } from './common-options';
import { runSpec } from './experiment-runner';
import { type Magic, parseIntArg, parseLayers, parseListArg, parseNumberArg, parser } from './registry';

interface Flag {
  flags: string;
  help: string;
  /** Spec field the value goes to. */
  field: string;
  parse?: (option: string) => (v: string) => unknown;
  choices?: string[];
}

interface ExperimentDef {
  name: string;
  kind: string;
  summary: string;
  /** Whether the experiment sweeps layers (adds --layers). */
  layers: boolean;
  flags: Flag[];
}

const layerRange = (option: string) => parser(option, 'a layer range like 5-29 or 0,3,8-10', parseLayers);
const bands = (option: string) =>
  parser(option, 'layer bands like 0-9,11-20', (v) => {
    const out = v.split(',').map((b) => /^(\d+)-(\d+)$/.exec(b.trim()));
    return out.every((m) => m && Number(m[1]) <= Number(m[2])) ? out.map((m) => [Number(m![1]), Number(m![2])]) : undefined;
  });
const prompts: Flag = { flags: '--prompts <set>', help: 'prompt set', field: 'prompts', choices: ['identification', 'questions'] };
const maxNewTokens: Flag = { flags: '--max-new-tokens <n>', help: 'tokens to generate greedily', field: 'maxNewTokens', parse: parseIntArg };

const DEFS: ExperimentDef[] = [
  {
    name: 'recallgap',
    kind: 'recall-gap',
    summary: 'Factual accuracy with the entity in the image vs named in text, on identified entities (PopVQA)',
    layers: false,
    flags: [
      { flags: '--types <list>', help: 'entity types: celebs,landmarks,paintings,brands', field: 'types', parse: parseListArg },
      { flags: '--match <rule>', help: 'answer match rule', field: 'match', choices: ['popvqa', 'alias'] },
      maxNewTokens,
    ],
  },
  {
    name: 'crosspatch',
    kind: 'cross-patch',
    summary: "Patch a donor entity's image-token states into a target at one layer; where does the prediction switch?",
    layers: true,
    flags: [
      { flags: '--donors <mode>', help: 'donor choice', field: 'donors', choices: ['same', 'cross', 'mixed'] },
      maxNewTokens,
    ],
  },
  {
    name: 'freeze',
    kind: 'freeze',
    summary: 'Freeze image tokens from a source layer up to --until; is the entity still identified?',
    layers: true,
    flags: [{ flags: '--until <layer>', help: 'last frozen layer T (paper: 20)', field: 'until', parse: parseIntArg }],
  },
  {
    name: 'knockout',
    kind: 'knockout',
    summary: 'Attention knockout: block edges (e.g. image->last) in a window of layers; change in answer probability',
    layers: true,
    flags: [
      { flags: '--window <w>', help: 'window size centred on each layer (Geva et al.: 9)', field: 'window', parse: parseIntArg },
      { flags: '--bands <list>', help: 'fixed layer bands instead of windows, e.g. 0-9,11-20', field: 'bands', parse: bands },
      { flags: '--from <layer>', help: 'block from this layer to the end', field: 'fromLayer', parse: parseIntArg },
      { flags: '--edges <list>', help: 'edge sets: image->last, image->query, entity->last, last->last', field: 'edges', parse: parseListArg },
      { flags: '--modality <m>', help: 'prompts with the entity in the image, in text, or both', field: 'modality', choices: ['image', 'text', 'both'] },
      prompts,
    ],
  },
  {
    name: 'logitlens',
    kind: 'logit-lens',
    summary: 'Decode every layer and position through the final norm and unembedding; top-k tokens',
    layers: true,
    flags: [
      { flags: '--top-k <k>', help: 'tokens per position', field: 'topK', parse: parseIntArg },
      { flags: '--positions <which>', help: 'positions to decode', field: 'positions', choices: ['image', 'query', 'last', 'all'] },
      { flags: '--modality <m>', help: 'entity in the image or named in text', field: 'modality', choices: ['image', 'text'] },
      prompts,
    ],
  },
  {
    name: 'probe',
    kind: 'probe',
    summary: 'Linear probes per layer predicting entity identity from the residual; resolution layer',
    layers: true,
    flags: [
      { flags: '--position <where>', help: 'residual position', field: 'position', choices: ['last-image', 'last', 'mean-image'] },
      { flags: '--target <name>', help: 'what to predict: entity or an attribute column', field: 'target' },
      { flags: '--threshold <x>', help: 'accuracy that counts as resolved', field: 'threshold', parse: parseNumberArg },
      { flags: '--modality <m>', help: 'prompts to probe', field: 'modality', choices: ['image', 'text', 'both'] },
    ],
  },
  {
    name: 'attribute',
    kind: 'attribution',
    summary: 'Attribution patching: linear estimate of every (layer, position) effect, exact patching of the top-k',
    layers: true,
    flags: [
      { flags: '--metric <name>', help: 'metric M at the last position', field: 'metric', choices: ['logit-diff', 'answer-logit', 'answer-prob'] },
      { flags: '--ig-steps <k>', help: 'integrated-gradients interpolations (0: plain attribution patching)', field: 'igSteps', parse: parseIntArg },
      { flags: '--top-k <k>', help: 'cells to confirm with exact patching', field: 'topK', parse: parseIntArg },
      prompts,
    ],
  },
  {
    name: 'recover',
    kind: 'recovery',
    summary: "Patch the text-only backbone's entity state into the VLM at each layer; accuracy recovered",
    layers: true,
    flags: [
      { flags: '--backbone <dir>', help: 'text-only LLM folder (shares d_model and layers)', field: 'backbone' },
      { flags: '--position <where>', help: 'VLM position written to', field: 'position', choices: ['last-image', 'query', 'last'] },
    ],
  },
];

function experimentMagic(def: ExperimentDef): Magic {
  const options = (): Option[] =>
    def.flags.map((f) => {
      const o = new Option(f.flags, f.help);
      if (f.choices) o.choices(f.choices);
      if (f.parse) o.argParser(f.parse(f.flags.split(' ')[0]));
      return o;
    });
  return {
    name: def.name,
    summary: def.summary,
    define(c: Command) {
      if (def.layers) c.addOption(new Option('--layers <range>', 'layers to sweep: 5-29 or 0,3,8-10 (default: all)').argParser(layerRange('--layers')));
      for (const o of options()) c.addOption(o);
      return addRunOptions(addSpecOptions(c));
    },
    async run({ opts }, ctx) {
      const spec: ExperimentSpec = { kind: def.kind, version: 1 };
      for (const [key, field] of [['layers', 'layers'], ['limit', 'limit'], ['seed', 'seed']] as const) {
        if (opts[key] !== undefined) spec[field] = opts[key];
      }
      for (const [i, o] of options().entries()) {
        const v = opts[o.attributeName()];
        if (v !== undefined) spec[def.flags[i].field] = v;
      }
      applySets(spec, opts.set);
      return runSpec(spec, runOptionsOf(opts), ctx, `%${def.name}`);
    },
  };
}

export const experimentMagics: Magic[] = DEFS.map(experimentMagic);
