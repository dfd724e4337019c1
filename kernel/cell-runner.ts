// TypeScript cells through tslab's own executor (transpile, top-level await, declarations carried across cells),
// with its console injected so the last expression becomes a value (for `execute_result`) and failures become
// structured errors, instead of tslab printing both as text.
import * as path from 'node:path';
import { format } from 'node:util';
import type { ConverterSet, Executor } from 'tslab/dist/executor';
import { expandShorthandProperties } from './cell-shorthand';
import { buildCellTypesInBackground, cellTypesDir, freshCellTypes } from './cell-types';
import { KernelInterrupt, compileErrorContent, errorContent } from './display';
import type { ErrorContent } from './messages';

type Converter = ConverterSet['node'];

export type RunOutcome = { ok: true; hasValue: boolean; value?: unknown } | { ok: false; error: ErrorContent };

/** What the handler needs from a cell runner (tests plug in a stand-in). */
export interface CellRunner {
  /** tslab's executor, for completion and inspection. */
  readonly executor: Executor;
  run(code: string, lineOffset?: number): Promise<RunOutcome>;
  /** Declares `let name: type` (a cell-API type expression; default `any`) in the user's namespace holding `value`. */
  bind(name: string, value: unknown, type?: string): Promise<void>;
  lookup(name: string): unknown;
  /** Stops waiting for the running cell's promise (tslab's asynchronous interrupt). */
  interrupt(): void;
  /** Declares the globals now (waiting for the converter if it is still being built). */
  warm(): void;
}

/** tslab's converters on the calling thread, built on first use (1–3 s each); the kernel builds them in a worker (converter-worker.ts). */
export class LazyConverters implements ConverterSet {
  private n: Converter | null = null;
  private b: Converter | null = null;

  private static create(isBrowser: boolean): Converter {
    const { createConverter } = require('tslab/dist/converter') as typeof import('tslab/dist/converter');
    return createConverter({ isJS: false, isBrowser });
  }

  get node(): Converter {
    return (this.n ??= LazyConverters.create(false));
  }

  get browser(): Converter {
    return (this.b ??= LazyConverters.create(true));
  }

  close(): void {
    this.n?.close();
    this.b?.close();
  }
}

const KERNEL_API = path.join(__dirname, 'kernel-api');
const HOPSCOPE_GLOBAL = '__hopscope__';

/** The objects cells reach through `hs`, `widgets` and bound magic results. */
export interface CellGlobals {
  hs: unknown;
  widgets: unknown;
}

const DIAGNOSTIC_FORMAT = '%s%d:%d - %s';
const INTERRUPTED = /^Interrupted asynchronously$|interrupted by `SIGINT`/;

export class TsRunner implements CellRunner {
  readonly executor: Executor;
  private sink: { value?: unknown; hasValue: boolean; errors: unknown[][] } | null = null;
  private preluded = false;
  private prelude: string | null = null;
  private pendingBind: unknown = undefined;
  /** The generated cell-api.d.ts this kernel's cells are typed against, or null (untyped `hs`). */
  private typedApi: string | null = null;

  /**
   * `typesDir`: where the library's generated declarations live (cell-types.ts); null keeps `hs` untyped and
   * builds nothing (stand-in libraries in tests).
   */
  constructor(
    rootDir: string,
    private readonly convs: ConverterSet,
    globals: CellGlobals,
    private readonly typesDir: string | null = cellTypesDir(),
  ) {
    const { createExecutor } = require('tslab/dist/executor') as typeof import('tslab/dist/executor');
    this.executor = createExecutor(rootDir, convs, {
      log: (...a: unknown[]) => {
        // tslab logs exactly one thing: the cell's last expression.
        if (this.sink) {
          this.sink.value = a[0];
          this.sink.hasValue = true;
        }
      },
      error: (...a: unknown[]) => {
        if (this.sink) this.sink.errors.push(a);
        else process.stderr.write(format(...a) + '\n');
      },
    });
    const slot = { ...globals, take: () => this.takeBind() };
    Object.defineProperty(globalThis, HOPSCOPE_GLOBAL, { value: slot, configurable: true });
  }

  /**
   * The cell prelude that declares `hs` and `widgets`. With the library's declarations generated
   * (cell-types.ts), `hs` has its real types; until then the library part is untyped and the declarations are
   * built in the background for the next start.
   */
  preludeCode(): string {
    if (this.prelude !== null) return this.prelude;
    const typed = this.typesDir === null ? null : freshCellTypes(this.typesDir);
    if (!typed && this.typesDir !== null) buildCellTypesInBackground(this.typesDir);
    this.typedApi = typed;
    const api = JSON.stringify(typed ?? KERNEL_API);
    this.prelude =
      `const hs: import(${api}).${typed ? 'Hs' : 'HsUntyped'} = (globalThis as any).${HOPSCOPE_GLOBAL}.hs;\n` +
      `const widgets: import(${api}).WidgetsApi = (globalThis as any).${HOPSCOPE_GLOBAL}.widgets;\n`;
    return this.prelude;
  }

  warm(): void {
    if (this.preluded) return;
    this.preluded = true;
    // tslab's execute converts synchronously before its first await, so the declarations are in place for the
    // cell that follows.
    const prelude = this.preludeCode();
    void this.runRaw(prelude, 0).then((r) => {
      if (!r.ok) process.stderr.write(`hopscope: the cell prelude failed: ${r.error.traceback.join('\n')}\n`);
    });
  }

  async run(code: string, lineOffset = 0): Promise<RunOutcome> {
    await this.converterReady();
    this.warm();
    return this.runRaw(expandShorthandProperties(code), lineOffset);
  }

  async bind(name: string, value: unknown, type?: string): Promise<void> {
    await this.converterReady();
    this.warm();
    this.pendingBind = value;
    // Typed only against the generated declarations; the untyped prelude's file does not export the library's types.
    const t = type && this.typedApi ? `import(${JSON.stringify(this.typedApi)}).${type}` : 'any';
    const r = await this.runRaw(`let ${name}: ${t} = (globalThis as any).${HOPSCOPE_GLOBAL}.take();`, 0);
    if (!r.ok) throw new Error(`could not bind ${name}: ${r.error.evalue}`);
  }

  /**
   * Waits, without blocking the event loop, for a converter still being built in a worker (converter-worker.ts):
   * converting is synchronous and would otherwise hold the kernel's thread until the build is done.
   */
  private async converterReady(): Promise<void> {
    const ready = (this.convs as { ready?: () => Promise<void> }).ready;
    if (typeof ready === 'function') await ready.call(this.convs);
  }

  lookup(name: string): unknown {
    const locals = this.executor.locals as Record<string, unknown>;
    if (Object.prototype.hasOwnProperty.call(locals, name)) return locals[name];
    return (globalThis as Record<string, unknown>)[name];
  }

  interrupt(): void {
    this.executor.interrupt();
  }

  private takeBind(): unknown {
    const v = this.pendingBind;
    this.pendingBind = undefined;
    return v;
  }

  private async runRaw(code: string, lineOffset: number): Promise<RunOutcome> {
    const sink = { hasValue: false, errors: [] as unknown[][] } as NonNullable<TsRunner['sink']>;
    this.sink = sink;
    let ok: boolean;
    try {
      ok = await this.executor.execute(code);
    } finally {
      // The prelude's run ends while the first cell's is under way; only clear our own sink.
      if (this.sink === sink) this.sink = null;
    }
    if (ok) return { ok: true, hasValue: sink.hasValue, value: sink.value };
    return { ok: false, error: errorOf(sink.errors, lineOffset) };
  }
}

function errorOf(errors: unknown[][], lineOffset: number): ErrorContent {
  if (errors.length === 0) return { ename: 'Error', evalue: 'the cell failed without an error message', traceback: [] };
  if (errors[0][0] === DIAGNOSTIC_FORMAT) {
    return compileErrorContent(
      errors.map((a) => {
        if (a[0] !== DIAGNOSTIC_FORMAT) return format(...a);
        const [, file, line, col, msg] = a as [string, string, number, number, string];
        return format(DIAGNOSTIC_FORMAT, file, file ? line : line + lineOffset, col, msg);
      }),
    );
  }
  const e = errors[0][0];
  if (e instanceof Error && INTERRUPTED.test(e.message)) return errorContent(new KernelInterrupt());
  return errorContent(e);
}
