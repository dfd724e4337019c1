// The experiment magics, one per registered kind (src/experiments/registry.ts): flags derived from the kind's
// JSON Schema → a spec `{kind, version: 1, ...}` → runExperiment (see experiment-runner.ts). `--set key=value`
// reaches any field without a flag (objects such as `questions`), and the library's validateSpec names a wrong one.
import { type Command, Option } from 'commander';
import { experimentDefinitions, experimentOptions, type AnyDefinition } from '../../src/experiments/registry';
import { optionExpects, parseOption, type SpecOption } from '../../src/experiments/spec-options';
import type { ExperimentSpec } from '../library';
import { addRunOptions, addSpecOptions, applySets, runOptionsOf } from './common-options';
import { runSpec } from './experiment-runner';
import { type Magic, parseLayers, parser } from './registry';

const layerRange = (option: string) => parser(option, 'a layer range like 5-29 or 0,3,8-10', parseLayers);

function commanderOption(o: SpecOption): Option {
  const metavar = o.type === 'boolean' ? 'true|false' : o.field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const opt = new Option(`${o.flag} <${metavar}>`, o.help);
  // commander checks choices itself (its parser); the value is converted in `run` (true/false → boolean).
  return o.choices ? opt.choices(o.choices) : opt.argParser(parser(o.flag, optionExpects(o), (v) => parseOption(o, v)));
}

/** The magic of one experiment definition: its schema's fields as flags, plus the shared spec and run options. */
export function experimentMagic(def: AnyDefinition): Magic {
  const flags = () => experimentOptions(def);
  return {
    name: def.magic.name,
    summary: def.summary,
    define(c: Command) {
      c.addOption(new Option('--layers <range>', 'layers to sweep: 5-29 or 0,3,8-10 (default: all)').argParser(layerRange('--layers')));
      for (const o of flags()) c.addOption(commanderOption(o));
      return addRunOptions(addSpecOptions(c));
    },
    async run({ opts }, ctx) {
      const spec: ExperimentSpec = { kind: def.kind, version: 1 };
      for (const key of ['layers', 'limit', 'seed'] as const) if (opts[key] !== undefined) spec[key] = opts[key];
      for (const o of flags()) {
        const v = opts[new Option(`${o.flag} <x>`).attributeName()];
        if (v !== undefined) spec[o.field] = o.choices ? parseOption(o, String(v)) : v;
      }
      applySets(spec, opts.set);
      return runSpec(spec, runOptionsOf(opts), ctx, `%${def.magic.name}`);
    },
  };
}

/** The magics of the kinds registered now (a kind registered later gets its magic from `experimentMagic`). */
export function experimentMagics(): Magic[] {
  return experimentDefinitions().map(experimentMagic);
}
