// `hopscope doctor`: what the engine runs on and why (issue 20, deliverable 4), in a few lines a user can paste
// into a bug report: the backend and its threads, each backend skipped and why, the native BLAS matMul (its
// addon, its library, its self-test), the fused non-GEMM kernels and, when the fast path is off, the one command
// that turns it on.
import * as fs from 'node:fs';
import { describeEngine, type EngineInfo } from '../engine/backend';
import { isBuiltinGemm, isWideBuiltinGemm, nativeAddonPath, nativeMatMulInfo, nativeTransposeInfo } from '../engine/native-matmul';
import { nativeOpsInfo } from '../engine/native-ops';

const OPENBLAS_INSTALL = 'apt-get install -y libopenblas0-pthread';

/** The report's lines for a started engine. */
export function doctorReport(engine: EngineInfo, addon = nativeAddonPath()): string[] {
  const nat = engine.nativeMatMul.enabled ? nativeMatMulInfo() : engine.nativeMatMul;
  const built = fs.existsSync(addon);
  const lines = [
    `engine: ${describeEngine(engine)}`,
    ...engine.skipped.map((s) => `skipped ${s.backend}: ${s.reason}`),
    `native matMul addon: ${built ? addon : `not built (${addon})`}`,
    nat.enabled
      ? `native matMul: on, ${nat.library} with ${nat.threads} BLAS thread${nat.threads === 1 ? '' : 's'}, self-test |diff| ${nat.selfTestDiff?.toExponential(1)}`
      : `native matMul: off (${nat.reason})`,
    // Loading transposes HF's [out, in] weights; the addon does it on every core, and needs no BLAS.
    ((t) => `native transpose (checkpoint loading): ${t.enabled ? 'on' : `off (${t.reason})`}`)(nativeTransposeInfo()),
    // The fused norms, RoPE, masked softmax and attention transpose (native-ops.ts); they need no BLAS either.
    ((o) => `native fused ops (norms, RoPE, masked softmax, attention transpose): ${o.enabled ? `on (${o.backends.join(', ')})` : `off (${o.reason})`}`)(nativeOpsInfo()),
  ];
  let fix: string | null = null;
  if (engine.provider === 'tensorflow' || engine.provider === 'tensorflow-gpu') fix = null; // tfjs-node brings its own kernels
  else if (!built) fix = 'npm run build:native   (needs g++ and Node headers)';
  else if (!nat.enabled && /no BLAS library/.test(nat.reason ?? '')) fix = `${OPENBLAS_INSTALL}   (as root; then run hopscope again)`;
  else if (!nat.enabled && /turned off/.test(nat.reason ?? '')) fix = 'unset HOPSCOPE_NATIVE_MATMUL (or set it to auto)';
  // The AVX2 kernel is ~0.85x OpenBLAS; the AVX-512 one 1.6-1.8x Debian's OpenBLAS (docs/performance.md, session 18).
  const narrowBuiltin = nat.enabled && isBuiltinGemm(nat.library) && !isWideBuiltinGemm(nat.library);
  lines.push(
    narrowBuiltin
      ? `fast path: active (built-in GEMM; OpenBLAS is faster still: ${OPENBLAS_INSTALL})`
      : nat.enabled || fix === null
        ? 'fast path: active'
        : `fast path: off; to turn it on: ${fix}`,
  );
  return lines;
}
