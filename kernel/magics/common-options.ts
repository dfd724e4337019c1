// Options every experiment magic shares, and how they become a spec and run options.
import { type Command, Option } from 'commander';
import type { ExperimentSpec } from '../library';
import type { RunOptions } from './experiment-runner';
import { UsageError, parseIntArg, parseNameArg } from './registry';

export function addRunOptions(c: Command): Command {
  return c
    .option('--model <variable>', 'variable holding the model (default: the model of the last %load)')
    .option('--compare <variable>', 'also run the same spec on the model in this variable and draw both on one figure (its result: _VARIABLE, or NAME_VARIABLE with --as NAME)', parseNameArg('--compare'))
    .option('--data <dir>', 'dataset folder (default: the last one loaded)')
    .option('--as <name>', 'also bind the result to this variable (it is always bound to _)', parseNameArg('--as'))
    .option('--run-dir <dir>', 'checkpoint finished work there; running the same command again resumes')
    .option('--queue <url>', 'run the patch sweeps on hopscope workers through Redis: redis://HOST:PORT/DB (docs/cluster.md)')
    .option('--no-widget', 'print a summary instead of showing the live view')
    .option('--save <file>', 'also write the figure to FILE (.png, .svg or .pdf), also in a headless nbconvert run')
    .option('--dry-run', 'validate and show the spec without running it');
}

export function addSpecOptions(c: Command): Command {
  return c
    .addOption(new Option('--limit <n>', 'use at most n examples').argParser(parseIntArg('--limit')))
    .addOption(new Option('--seed <n>', 'random seed').argParser(parseIntArg('--seed')))
    .addOption(
      new Option('--set <key=value>', 'set any spec field (dotted keys; JSON values), repeatable')
        .argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v])
        .default([]),
    );
}

export function runOptionsOf(opts: Record<string, unknown>): RunOptions {
  return {
    as: opts.as as string | undefined,
    runDir: opts.runDir as string | undefined,
    queue: opts.queue as string | undefined,
    widget: opts.widget !== false,
    dryRun: opts.dryRun === true,
    model: opts.model as string | undefined,
    data: opts.data as string | undefined,
    compare: opts.compare as string | undefined,
  };
}

/** `--set a.b=3 --set name="x"`: values parse as JSON when they can, else stay strings. */
export function applySets(spec: ExperimentSpec, sets: unknown): void {
  for (const s of (sets as string[] | undefined) ?? []) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set ${JSON.stringify(s)}: use key=value (e.g. --set maxNewTokens=20)`);
    const keys = s.slice(0, eq).split('.');
    let value: unknown = s.slice(eq + 1);
    try {
      value = JSON.parse(value as string);
    } catch {
      // a bare word stays a string
    }
    let obj: Record<string, unknown> = spec;
    for (const k of keys.slice(0, -1)) {
      if (typeof obj[k] !== 'object' || obj[k] === null) obj[k] = {};
      obj = obj[k] as Record<string, unknown>;
    }
    obj[keys[keys.length - 1]] = value;
  }
}
