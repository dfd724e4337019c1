// Trains the teaching VLM and writes it as a HF folder:
//   node --import tsx src/train/cli.ts --out data/teaching [--data data/toyworld] [--run .hopscope-cache/train/teaching] [--seed 0]
//     [--stages lm,vision,align,instruct] [--recipe recipe.json] [--eval]
import * as path from 'node:path';
import * as fs from 'node:fs';
import { SingleBar, Presets } from 'cli-progress';
import { describeEngine, initEngine, shutdownEngine } from '../engine/backend';
import { STAGES, trainTeachingModel, type StageName, type TeachingRecipe } from './teaching';

function arg(name: string, dflt?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

async function main(): Promise<void> {
  // Stock kernels: training's small batched products are faster there, and the shipped weights must not depend
  // on whether a BLAS was found (same seed, same weights).
  const engine = await initEngine({ threads: Number(process.env.HOPSCOPE_THREADS ?? 2), native: 'off' });
  console.error(describeEngine(engine));
  const out = arg('out', 'data/teaching')!;
  const stages = arg('stages')?.split(',') as StageName[] | undefined;
  if (stages) for (const s of stages) if (!STAGES.includes(s)) throw new Error(`--stages: unknown stage ${s} (known: ${STAGES.join(', ')})`);
  const recipeFile = arg('recipe');
  const recipe = recipeFile ? (JSON.parse(fs.readFileSync(recipeFile, 'utf8')) as Partial<TeachingRecipe>) : undefined;
  let bar: SingleBar | null = null;
  let current = '';
  const t0 = Date.now();
  const res = await trainTeachingModel({
    seed: Number(arg('seed', '0')),
    dataDir: arg('data', 'data/toyworld')!,
    outDir: out,
    runDir: arg('run', path.join('.hopscope-cache', 'train', 'teaching'))!,
    stages,
    recipe,
    onProgress: (p) => {
      // Training is synchronous, so the bar's timers never fire: render explicitly (TTY) or log lines (pipes).
      if (!process.stderr.isTTY) {
        if (p.step % 25 === 0 || p.step === p.steps) console.error(`${p.stage} ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} ${p.elapsedS.toFixed(0)}s`);
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
  if (arg('eval') !== undefined || process.argv.includes('--eval')) {
    const { evaluateTeaching } = await import('./eval');
    await evaluateTeaching({ modelDir: out, dataDir: arg('data', 'data/toyworld')!, report: path.join(arg('run', path.join('.hopscope-cache', 'train', 'teaching'))!, 'eval.json') });
  }
  shutdownEngine();
}

main().catch((e) => {
  console.error(e);
  shutdownEngine();
  process.exit(1);
});
