// The `hopscope` command line: one subcommand per job, each a thin layer over a library call.
import * as fs from 'node:fs';
import { Command, CommanderError } from 'commander';
import { HopscopeError } from '../errors';
import { describeEngine, initEngine, shutdownEngine } from '../engine/backend';
import { loadModelFromDir } from '../models/load';
import { parseInputs, readJson, runForward } from './forward';

function optionalCommand(program: Command, modulePath: string, register: string): void {
  // Subcommands whose modules are optional at this stage of the project register themselves if present.
  let mod: Record<string, unknown>;
  try {
    mod = require(modulePath) as Record<string, unknown>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && String((e as Error).message).includes(modulePath.split('/').pop()!)) return;
    throw e;
  }
  const fn = mod[register];
  if (typeof fn === 'function') (fn as (p: Command) => void)(program);
}

export function buildProgram(): Command {
  const program = new Command('hopscope')
    .description('Mechanistic interpretability of vision-language models: patching, knockout, probes, logit lens.')
    .option('--backend <name>', 'tensorflow-gpu | tensorflow | wasm | cpu (default: first that works; env HOPSCOPE_BACKEND)')
    .option('--threads <n>', 'worker threads for the wasm backend (env HOPSCOPE_THREADS)');

  program
    .command('forward')
    .description('run a model folder on a fixture-format inputs.json; write logits, hidden states, generated tokens')
    .requiredOption('--model <dir>', 'HuggingFace model folder (config.json + safetensors)')
    .requiredOption('--inputs <file>', 'inputs.json (input_ids, attention_mask, pixel_values, ...)')
    .requiredOption('--out <file>', 'output JSON file')
    .option('--generate <n>', 'greedy new tokens per row', '0')
    .option('--weights <file>', 'another safetensors file in the folder (e.g. model-bf16.safetensors)')
    .option('--variant <name>', 'section of a padded inputs file (left | right)')
    .action(async (o: { model: string; inputs: string; out: string; generate: string; weights?: string; variant?: string }) => {
      const engine = await initEngine(engineOptions(program));
      process.stderr.write(`hopscope: ${describeEngine(engine)}\n`);
      const model = loadModelFromDir(o.model, { file: o.weights });
      try {
        const inputs = parseInputs(readJson(o.inputs), o.variant);
        const json = runForward(model, inputs, Number(o.generate));
        inputs.pixelValues?.dispose();
        fs.writeFileSync(o.out, JSON.stringify(json));
        process.stderr.write(`hopscope: wrote ${o.out}\n`);
      } finally {
        model.dispose();
      }
    });

  optionalCommand(program, '../experiments/cli', 'registerRun');
  optionalCommand(program, './run', 'registerRun');
  optionalCommand(program, './demo', 'registerDemo');
  optionalCommand(program, './train', 'registerTrain');
  optionalCommand(program, './export', 'registerExport');
  return program;
}

export function engineOptions(program: Command): { backend?: never; threads?: number } {
  const o = program.opts<{ backend?: string; threads?: string }>();
  return { backend: o.backend as never, threads: o.threads ? Number(o.threads) : undefined };
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram().exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof HopscopeError) {
      process.stderr.write(`hopscope: ${e.name}: ${e.message}\n`);
      return 2;
    }
    throw e;
  } finally {
    shutdownEngine();
  }
}

if (require.main === module || process.argv[1]?.endsWith('hopscope.js')) {
  main(process.argv.slice(2)).then((code) => process.exit(code || Number(process.exitCode ?? 0)));
}
