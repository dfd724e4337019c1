// %time / %%time and %timeit / %%timeit, as in IPython: how long a statement or a cell takes. %time runs the
// code once (compilation included, as IPython's wall time is) and shows its value; %timeit compiles the code
// once into a function and calls it in loops, so the TypeScript compile is not what gets measured.
import { type Magic, type MagicContext, type MagicOutput, UsageError } from './registry';

const TIMEIT_FN = '__hopscope_timeit__';
/** IPython's autorange: grow the loop count until one run takes at least this long. */
const MIN_RUN_S = 0.2;
const DEFAULT_RUNS = 7;

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return String(s);
  const [v, unit] = s >= 1 ? [s, 's'] : s >= 1e-3 ? [s * 1e3, 'ms'] : s >= 1e-6 ? [s * 1e6, 'µs'] : [s * 1e9, 'ns'];
  return `${v.toPrecision(3)} ${unit}`;
}

function codeOf(args: unknown[], body: string | undefined, label: string): string {
  const code = body ?? String(args[0] ?? '');
  if (code.trim() === '') throw new UsageError(`${label}: nothing to time; write the code after the magic${body === undefined ? '' : ' or in the cell below it'}`);
  return code;
}

async function timeOnce(ctx: MagicContext, code: string): Promise<MagicOutput> {
  const t0 = performance.now();
  const bundle = await ctx.run(code);
  ctx.stdout(`Wall time: ${formatSeconds((performance.now() - t0) / 1000)}\n`);
  return bundle ? { show: true, bundle } : { show: false };
}

const timeDef = (cell: boolean): Magic => ({
  name: 'time',
  cell,
  summary: cell ? 'Run the cell body and print its wall time' : 'Run the statement after it and print its wall time: %time hs.loadModel("teaching")',
  define: (c) => (cell ? c : c.argument('[code...]', 'TypeScript to run')),
  parseRaw: (line) => ({ opts: {}, args: [line] }),
  run: ({ args }, ctx, body) => timeOnce(ctx, codeOf(args, body, cell ? '%%time' : '%time')),
});

export interface TimeitResult {
  loops: number;
  runs: number;
  /** Seconds per loop, one value per run. */
  timings: number[];
  best: number;
  worst: number;
  mean: number;
  stdev: number;
}

/** `-n 100 -r 3 rest`: the options and the code after them. */
export function parseTimeitLine(line: string): { opts: Record<string, unknown>; args: unknown[] } {
  const opts: Record<string, unknown> = {};
  let rest = line;
  for (;;) {
    const m = /^\s*(-n|-r)\s*(\S+)/.exec(rest);
    if (!m) break;
    if (!/^[1-9]\d*$/.test(m[2])) throw new UsageError(`${m[1]} ${JSON.stringify(m[2])} is not a positive integer`);
    opts[m[1] === '-n' ? 'loops' : 'runs'] = Number(m[2]);
    rest = rest.slice(m[0].length);
  }
  return { opts, args: [rest.trim()] };
}

async function timeit(ctx: MagicContext, code: string, opts: Record<string, unknown>, label: string): Promise<MagicOutput> {
  const usesAwait = /\bawait\b/.test(code);
  // Compiled once by tslab, in the cell's scope (it sees the notebook's variables).
  await ctx.run(`(globalThis as any).${TIMEIT_FN} = ${usesAwait ? 'async ' : ''}() => {\n${code}\n};`);
  const fn = ctx.lookup(TIMEIT_FN) as () => unknown;
  delete (globalThis as Record<string, unknown>)[TIMEIT_FN];
  if (typeof fn !== 'function') throw new Error(`${label}: the code did not compile into a function`);
  const once = async (n: number): Promise<number> => {
    const t0 = performance.now();
    if (usesAwait) for (let i = 0; i < n; i++) await fn();
    else for (let i = 0; i < n; i++) fn();
    return (performance.now() - t0) / 1000;
  };
  let loops = opts.loops as number | undefined;
  if (loops === undefined) {
    for (loops = 1; ; loops *= 10) {
      ctx.signal.throwIfAborted();
      if ((await once(loops)) >= MIN_RUN_S || loops >= 1e9) break;
    }
  }
  const runs = (opts.runs as number | undefined) ?? DEFAULT_RUNS;
  const timings: number[] = [];
  for (let r = 0; r < runs; r++) {
    ctx.signal.throwIfAborted();
    timings.push((await once(loops)) / loops);
  }
  const mean = timings.reduce((a, b) => a + b, 0) / runs;
  const stdev = Math.sqrt(timings.reduce((a, t) => a + (t - mean) ** 2, 0) / runs);
  const result: TimeitResult = { loops, runs, timings, best: Math.min(...timings), worst: Math.max(...timings), mean, stdev };
  await ctx.keep(result);
  const text = `${formatSeconds(mean)} ± ${formatSeconds(stdev)} per loop (mean ± std. dev. of ${runs} run${runs === 1 ? '' : 's'}, ${loops} loop${loops === 1 ? '' : 's'} each)`;
  return { value: result, show: true, bundle: { 'text/plain': text } };
}

const timeitDef = (cell: boolean): Magic => ({
  name: 'timeit',
  cell,
  summary: cell ? 'Time the cell body in loops (mean ± std. dev.); the timings are bound to _' : 'Time a statement in loops: %timeit -n 100 -r 7 tf.matMul(a, b).dispose()',
  define: (c) => {
    c.option('-n <loops>', 'loops per run (default: grow by 10× until a run takes 0.2 s)').option('-r <runs>', `runs (default ${DEFAULT_RUNS})`);
    return cell ? c : c.argument('[code...]', 'TypeScript to time');
  },
  parseRaw: parseTimeitLine,
  run: ({ opts, args }, ctx, body) => {
    const label = cell ? '%%timeit' : '%timeit';
    if (cell && String(args[0] ?? '') !== '') throw new UsageError(`${label}: only -n and -r go on the magic line; the code goes in the cell body`);
    return timeit(ctx, codeOf(args, body, label), opts, label);
  },
});

export const timingMagics: Magic[] = [timeDef(false), timeDef(true), timeitDef(false), timeitDef(true)];
