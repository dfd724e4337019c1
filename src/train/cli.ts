// Trains the teaching VLM and writes it as a HF folder:
//   node --import tsx src/train/cli.ts --out DIR [--data data/toyworld] [--run .hopscope-cache/train/teaching] [--seed 0]
//     [--stage-seed ground=1,readout=1] [--stages lm,vision,align,instruct,ground,readout] [--recipe recipe.json] [--jobs 2] [--workers 2]
//     [--backbone-dir DIR] [--eval]
// --stage-seed: another seed for the data order and views of single stages (the weights they start from are
// unchanged): with a run folder that holds the pretraining stages, it retrains only the tuning stages, to measure
// a recipe's spread over them on the same backbone.
// --backbone-dir: write the backbone there (shared by several VLMs; the VLM's config.json names it).
// With --jobs 2 (the default) LM and vision pretraining, which share nothing, run at the same time in two
// child processes of one thread each; the later stages continue here. One wasm thread per process is both
// the fastest setting for these small products and part of the recipe: thread count changes float sums.
// --workers: threads for a stage whose recipe splits its batches into shards (stages.<name>.shards,
// src/train/shards.ts); unlike wasm threads, they change no sum, so the weights do not depend on it.
import * as childProcess from 'node:child_process';
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { SingleBar, Presets } from 'cli-progress';
import { Command, Option } from 'commander';
import { describeEngine, initEngine, shutdownEngine } from '../engine/backend';
import { checkStageSeeds, STAGES, trainingEngine, trainTeachingModel, type StageName, type TeachingRecipe } from './teaching';
import { parseEngineConfig } from '../engine/config';

interface CliOptions {
  out?: string;
  data: string;
  run: string;
  seed: string;
  stageSeed?: string;
  stages?: string;
  recipe?: string;
  jobs: string;
  workers: string;
  backboneDir?: string;
  eval?: boolean;
  child?: boolean;
}

// commander, as the hopscope CLI: `--help` prints this and an unknown flag is an error, never a training run.
const program = new Command('train')
  .description('train the teaching VLM (and its backbone) and write it as a HuggingFace folder')
  // No default: a run must not overwrite a shipped model because a flag was left out (data/teaching/README.md
  // gives each shipped model's command).
  .option('--out <dir>', 'the VLM folder to write (required)')
  .option('--data <dir>', 'the toyworld data', 'data/toyworld')
  .option('--run <dir>', 'checkpoints of every stage (a finished stage is reused)', path.join('.hopscope-cache', 'train', 'teaching'))
  .option('--seed <n>', 'the seed', '0')
  .option('--stage-seed <list>', 'seeds for single stages\' data order and views, e.g. ground=1,readout=1 (their starting weights are unchanged)')
  .option('--stages <list>', `comma-separated stages to run (${STAGES.join(',')})`)
  .option('--recipe <file>', 'a recipe JSON (data/teaching/recipes/)')
  .option('--jobs <n>', 'processes for the independent LM and vision pretraining', '2')
  .option('--workers <n>', "threads for a stage whose recipe shards its batches (stages.<name>.shards); the weights do not depend on it", String(Math.min(2, os.availableParallelism())))
  .option('--backbone-dir <dir>', 'also write the backbone there (shared by several VLMs)')
  .option('--eval', 'run src/train/contrast.ts on the folder just written')
  .addOption(new Option('--child').hideHelp());
const opts = (): CliOptions => program.opts<CliOptions>();
/** The options a pretraining child process is given again, by flag. */
const CHILD_PASS = { data: '--data', seed: '--seed', stageSeed: '--stage-seed', recipe: '--recipe', workers: '--workers' } as const;

async function main(): Promise<void> {
  program.parse();
  const o = opts();
  if (!o.child && !o.out) program.error('error: --out DIR is required (the VLM folder to write; e.g. data/teaching/late with --recipe data/teaching/recipes/late.json)');
  const recipeFile = o.recipe;
  const recipe = recipeFile ? (JSON.parse(fs.readFileSync(recipeFile, 'utf8')) as Partial<TeachingRecipe>) : undefined;
  // The recipe's kernels (teaching.ts trainingEngine): the same seed gives the same weights only on them.
  // Training asks for one thread unless HOPSCOPE_THREADS says otherwise (src/engine/config.ts parses it).
  const env = parseEngineConfig();
  const engine = await initEngine(trainingEngine(recipe?.kernels, env.threadsFromEnv ? env.threads : 1)).catch((e: Error) => {
    const hint = recipe?.kernels === 'builtin' ? ' (a recipe with "kernels": "stock" trains here, into other weights than the shipped ones)' : '';
    throw new Error(`the recipe's kernels (${recipe?.kernels ?? 'stock'}) cannot start here: ${e.message}${hint}`);
  });
  console.error(describeEngine(engine));
  const t0 = Date.now();
  const child = o.child === true;
  const out = o.out!;
  const runDir = o.run;
  const stages = o.stages?.split(',') as StageName[] | undefined;
  if (stages) for (const s of stages) if (!STAGES.includes(s)) throw new Error(`--stages: unknown stage ${s} (known: ${STAGES.join(', ')})`);
  const jobs = Number(o.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`--jobs ${o.jobs}: expected a positive integer`);
  const workers = Number(o.workers);
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers ${o.workers}: expected a positive integer`);
  const seed = Number(o.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed ${o.seed}: expected a non-negative integer`);
  const stageSeeds = o.stageSeed === undefined ? undefined : parseStageSeeds(o.stageSeed);
  if (!child && jobs > 1) {
    const pending = (['lm', 'vision'] as const).filter((s) => (!stages || stages.includes(s)) && !fs.existsSync(path.join(runDir, s, 'params.safetensors')));
    if (pending.length === 2) await Promise.all(pending.map((s) => runChild(s, runDir)));
  }
  let bar: SingleBar | null = null;
  let current = '';
  const res = await trainTeachingModel({
    seed,
    stageSeeds,
    dataDir: o.data,
    outDir: child ? undefined : out,
    backboneDir: o.backboneDir,
    runDir,
    stages,
    recipe,
    workers,
    onProgress: (p) => {
      // Training is synchronous, so the bar's timers never fire: render explicitly (TTY) or log lines (pipes).
      if (!process.stderr.isTTY) {
        if (p.step % Math.max(25, Math.round(p.steps / 40)) === 0 || p.step === p.steps) console.error(`${p.stage} ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} ${p.elapsedS.toFixed(0)}s`);
        return;
      }
      if (p.stage !== current) {
        bar?.stop();
        current = p.stage;
        bar = new SingleBar({ format: `${p.stage.padEnd(8)} {bar} {value}/{total} loss {loss} {duration_formatted}` }, Presets.shades_classic);
        bar.start(p.steps, p.step - 1, { loss: '-' });
      }
      bar!.update(p.step, { loss: p.loss.toFixed(4) });
      bar!.render();
    },
  });
  (bar as SingleBar | null)?.stop();
  console.error(JSON.stringify({ wallS: (Date.now() - t0) / 1000, seconds: res.seconds, finalLoss: res.finalLoss, numParams: res.numParams }, null, 1));
  if (o.eval) {
    // The library's experiments on the folder just written (src/train/contrast.ts), as a user would run them.
    const { contrast } = await import('./contrast');
    const report = await contrast({ model: out, data: o.data, limit: 48, log: (s) => console.error(s) });
    const file = path.join(runDir, 'eval.json');
    fs.writeFileSync(file, JSON.stringify(report, null, 1));
    console.error(`evaluation: ${file}`);
  }
  shutdownEngine();
}

/** `ground=1,readout=1` as { ground: 1, readout: 1 }, checked as training checks it (`checkStageSeeds`) before anything trains. */
function parseStageSeeds(list: string): Partial<Record<StageName, number>> {
  const pairs = list.split(',').map((item) => {
    const m = /^([a-z]+)=(\d+)$/.exec(item.trim());
    if (!m) throw new Error(`--stage-seed ${list}: expected stage=n pairs, comma-separated (stages: ${STAGES.join(', ')}); got '${item}'`);
    return [m[1], Number(m[2])] as const;
  });
  return checkStageSeeds(Object.fromEntries(pairs));
}

/** One pretraining stage in a child process (same arguments, one thread), its log lines passed through. */
function runChild(stage: StageName, runDir: string): Promise<void> {
  const o = opts();
  const pass = (Object.keys(CHILD_PASS) as (keyof typeof CHILD_PASS)[]).flatMap((k) => (o[k] !== undefined ? [CHILD_PASS[k], String(o[k])] : []));
  const args = [...process.execArgv, __filename, '--child', '--stages', stage, '--run', runDir, ...pass];
  const proc = childProcess.spawn(process.execPath, args, { env: { ...process.env, HOPSCOPE_THREADS: '1' }, stdio: ['ignore', 'inherit', 'pipe'] });
  let tail = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-4000);
    for (const line of chunk.split('\n')) if (line.trim() && !/^\s|^[{}]/.test(line)) console.error(`[${stage}] ${line}`);
  });
  return new Promise((resolve, reject) => {
    proc.on('error', reject);
    proc.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${stage} stage failed (exit ${code}):\n${tail}`))));
  });
}

main().catch((e) => {
  console.error(e);
  shutdownEngine();
  process.exit(1);
});
