// `npm run build:native`, also run by `npm install` (postinstall): compiles the native BLAS matMul addon once
// (src/engine/native-matmul.ts; issue 20: built at install, never at first use) and says in one line whether
// the fast path will be active and, when not, the one command that makes it so. Never fails the install: a
// machine without a compiler or OpenBLAS runs everything on the stock kernels.
import { buildNativeMatMul, isBuiltinGemm, isWideBuiltinGemm, probeBlas } from '../src/engine/native-matmul';

const say = (s: string) => process.stdout.write(`hopscope: ${s}\n`);
try {
  const file = buildNativeMatMul();
  const blas = probeBlas();
  if (blas.library && isBuiltinGemm(blas.library) && !isWideBuiltinGemm(blas.library))
    say(`native matMul ready: ${blas.library} through ${file} (OpenBLAS is faster still: apt-get install -y libopenblas0-pthread)`);
  else if (blas.library) say(`native matMul ready: ${blas.library} through ${file}`);
  else say(`native matMul addon built, but ${blas.reason}; until then every product runs on the stock kernels`);
} catch (e) {
  say(`native matMul addon not built (${(e as Error).message.split('\n')[0]}); the stock kernels will run (npm run build:native retries)`);
}
