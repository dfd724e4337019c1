// The `hopscope` command line: one subcommand per job, each a thin layer over a library call.
import * as fs from 'node:fs';
import { Command, CommanderError } from 'commander';
import { HopscopeError } from '../errors';
import { describeEngine, initEngine, shutdownEngine } from '../engine/backend';
import { loadModelWithAssets } from '../experiments/assets';
import { registerDemo } from './demo';
import { doctorReport } from './doctor';
import { registerExport } from './export';
import { readForwardInputs, readJson, runForward } from './forward';
import { registerRun } from './run';
import { registerWorker } from './worker';

export function buildProgram(): Command {
  const program = new Command('hopscope')
    .description('Mechanistic interpretability of vision-language models: patching, knockout, probes, logit lens.')
    .option('--backend <name>', 'tensorflow-gpu | tensorflow | wasm | cpu (default: first that works; env HOPSCOPE_BACKEND)')
    .option('--threads <n>', 'worker threads for the wasm backend (env HOPSCOPE_THREADS)');

  program
    .command('forward')
    .description('run a model folder on a fixture-format inputs.json; write logits, hidden states, generated tokens')
    .requiredOption('--model <dir>', 'HuggingFace model folder (config.json + safetensors)')
    .requiredOption('--inputs <file>', 'inputs.json (input_ids, attention_mask, pixel_values or raw_images_uint8_hwc, ...)')
    .requiredOption('--out <file>', 'output JSON file')
    .option('--generate <n>', 'greedy new tokens per row', '0')
    .option('--weights <file>', 'another safetensors file in the folder (e.g. model-bf16.safetensors)')
    .option('--variant <name>', 'section of a padded inputs file (left | right)')
    .action(async (o: { model: string; inputs: string; out: string; generate: string; weights?: string; variant?: string }) => {
      const engine = await initEngine(engineOptions(program));
      process.stderr.write(`hopscope: ${describeEngine(engine)}\n`);
      // With its preprocessor_config.json and tokenizer: raw images go through the family's own processor.
      const model = loadModelWithAssets(o.model, { file: o.weights });
      try {
        const inputs = readForwardInputs(model, readJson(o.inputs), o.variant);
        const json = runForward(model, inputs, Number(o.generate));
        inputs.pixelValues?.dispose();
        fs.writeFileSync(o.out, JSON.stringify(json));
        process.stderr.write(`hopscope: wrote ${o.out}\n`);
      } finally {
        model.dispose();
      }
    });

  program
    .command('doctor')
    .description('what the engine runs on and why: backend, threads, the native BLAS matMul, and how to turn the fast path on')
    .action(async () => {
      const engine = await initEngine(engineOptions(program));
      process.stdout.write(doctorReport(engine).join('\n') + '\n');
    });

  registerRun(program);
  registerWorker(program);
  registerDemo(program);
  registerExport(program);
  // The Jupyter commands live in kernel/ (bin/hopscope.js routes them there, so the CLI never loads tslab).
  program.addHelpText(
    'after',
    '\nJupyter:\n  hopscope install [--user|--sys-prefix|--prefix P] [--python PATH]   install the kernel and widgets\n' +
      '  hopscope kernel --config-path FILE                                 (started by Jupyter)\n' +
      'Training the teaching models: node --import tsx src/train/cli.ts --help (recipes: data/teaching/recipes/, data card: data/teaching/README.md)\n',
  );
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

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code || Number(process.exitCode ?? 0)));
}
