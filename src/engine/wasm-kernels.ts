// Kernels of the wasm backend that hopscope replaces, because the stock ones copy more than they must.
//
// Identity and same-dtype Cast share the input's memory (a reference count, as the wasm backend's own Reshape
// does) instead of copying it. tfjs-core clones every tensor an op saves for its gradient while a tape records
// (Engine.saveTensorsForBackwardMode, Engine.clone → Identity), and tfjs-backend-wasm 4.22's Identity copies the
// whole tensor (kernels/Identity.js; the cpu backend's shares it): in training on wasm that copy was 13 % of a
// readout step (the late teaching model's, `node --cpu-prof`). Tensors are immutable and no kernel writes into its
// inputs, so a shared buffer is never seen to change; it is freed when the last tensor on it is.
//
// Slice, SplitV and GatherV2 that copy only what they return, one contiguous run at a time.
// tfjs-backend-wasm 4.22's Slice starts with `backend.readSync(x.dataId)`, which copies the *whole* input out of
// the heap (HEAPU8.slice) before it copies the slice (kernels/Slice.js), and its SplitV calls that Slice once per
// piece. hopscope's per-head attention slices a [B, H, T, hd] tensor B·KV times, so each layer copied the
// tensor B·KV times over: on issue 20's mid shapes Slice was 18 % of a forward and 37 % of a scheduled sweep
// (`npm run bench:profile`: 8.7 ms for one [1,2,276,64] slice of a [4,16,276,64] tensor). These kernels read
// the input through a view of the heap and copy each contiguous run once.
import * as tf from '@tensorflow/tfjs-core';

type Heap = Float32Array | Int32Array | Uint8Array;

interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Heap;
  incRef(dataId: tf.DataId): void;
}

/** `x` itself under a new reference: the backend frees the buffer when its count drops to zero. */
function shared(x: tf.TensorInfo, backend: WasmBackend): tf.TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/**
 * Copies the slice `begin`/`size` of a row-major array of `shape` into `out`. The innermost dimensions the
 * slice takes whole, with the first partial one above them, form one contiguous run; the outer ones are walked
 * with an odometer.
 */
export function copySlice(x: Heap, shape: readonly number[], begin: readonly number[], size: readonly number[], out: Heap): void {
  const rank = shape.length;
  if (out.length === 0) return;
  if (rank === 0) {
    out[0] = x[0];
    return;
  }
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let d = rank - 2; d >= 0; d--) strides[d] = strides[d + 1] * shape[d + 1];
  let k = rank - 1;
  let run = size[k];
  while (k > 0 && size[k] === shape[k]) run *= size[--k];
  let src = 0;
  for (let d = 0; d < rank; d++) src += begin[d] * strides[d];
  let outer = 1;
  for (let d = 0; d < k; d++) outer *= size[d];
  const idx = new Array<number>(k).fill(0);
  for (let n = 0, o = 0; n < outer; n++, o += run) {
    // A typed-array set is a memcpy; under ~32 elements creating the subarray costs more than the loop.
    if (run >= 32) out.set(x.subarray(src, src + run), o);
    else for (let j = 0; j < run; j++) out[o + j] = x[src + j];
    for (let d = k - 1; d >= 0; d--) {
      src += strides[d];
      if (++idx[d] < size[d]) break;
      src -= size[d] * strides[d];
      idx[d] = 0;
    }
  }
}

function sliceInfo(x: tf.TensorInfo, begin: number | number[], size: number | number[] | undefined, backend: WasmBackend): tf.TensorInfo {
  const [b, s] = tf.slice_util.parseSliceParams(x as tf.TensorInfo as tf.Tensor, begin, size);
  const out = backend.makeOutput(s, x.dtype);
  // Views taken after makeOutput: an allocation may grow the heap, which detaches earlier views of unshared memory.
  if (s.every((n) => n > 0)) copySlice(backend.typedArrayFromHeap(x), x.shape, b, s, backend.typedArrayFromHeap(out));
  return out;
}

let registered = false;

/** Replaces a wasm kernel by `run`; string inputs, which the heap does not hold, go to the stock kernel. */
function overrideNumeric(
  stock: tf.KernelConfig,
  run: (x: tf.TensorInfo, attrs: tf.NamedAttrMap, backend: WasmBackend) => tf.TensorInfo | tf.TensorInfo[],
): void {
  tf.unregisterKernel(stock.kernelName, 'wasm');
  tf.registerKernel({
    ...stock,
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      return x.dtype === 'string' ? stock.kernelFunc(args) : run(x, args.attrs ?? {}, args.backend as unknown as WasmBackend);
    },
  });
}

/**
 * GatherV2 (int32 indices) as one copy of each selected run of `sliceSize` elements. The stock wasm kernel walks
 * every element with its full index arithmetic: the embedding lookup of issue 20's mid shapes (276 rows of 1,024)
 * took 16 ms, 1.6 % of a forward; and with batchDims > 0 it returns wrong values (tfjs-backend-wasm 4.22:
 * [[1, 2], [3, 4], [5, 6]] gathered by [[1, 0], [0, 0], [1, 1]] on axis 1, batchDims 1, gave [2, 1, 3, 4, 2, 2]; the
 * cpu kernel, [2, 1, 3, 3, 6, 6]). Shapes as tfjs's cpu kernel reads them (collectGatherOpShapeInfo). Indices outside
 * [0, n) throw, as the cpu kernel does (the stock wasm one reads whatever memory they point at). Null: the stock kernel.
 */
function gatherInfo(x: tf.TensorInfo, indices: tf.TensorInfo, attrs: tf.GatherV2Attrs, backend: WasmBackend): tf.TensorInfo | null {
  if (indices.dtype !== 'int32') return null;
  const ax = tf.util.parseAxisParam(attrs.axis, x.shape)[0];
  const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(x as tf.TensorInfo as tf.Tensor, indices as tf.TensorInfo as tf.Tensor, ax, attrs.batchDims ?? 0);
  const { batchSize, outerSize, dimSize: n, sliceSize } = info;
  const idx = Int32Array.from(backend.typedArrayFromHeap(indices) as Int32Array);
  for (const i of idx) if (i < 0 || i >= n) throw new Error(`GatherV2: the index value ${i} is not in [0, ${n - 1}]`);
  const out = backend.makeOutput(info.outputShape, x.dtype);
  const count = batchSize === 0 ? 0 : idx.length / batchSize;
  if (batchSize * outerSize * count * sliceSize === 0) return out;
  // Views taken after makeOutput (an allocation may grow the heap).
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  for (let b = 0, d = 0; b < batchSize; b++)
    for (let o = 0; o < outerSize; o++)
      for (let j = 0; j < count; j++, d += sliceSize) {
        const from = ((b * outerSize + o) * n + idx[b * count + j]) * sliceSize;
        dst.set(src.subarray(from, from + sliceSize), d);
      }
  return out;
}

/** Replaces the wasm backend's Identity, Cast (to the same dtype), Slice, SplitV and GatherV2. */
export function registerWasmKernels(): void {
  if (registered) return;
  const identity = tf.getKernel('Identity', 'wasm');
  const cast = tf.getKernel('Cast', 'wasm');
  const slice = tf.getKernel('Slice', 'wasm');
  const splitV = tf.getKernel('SplitV', 'wasm');
  const gather = tf.getKernel('GatherV2', 'wasm');
  if (!identity || !cast || !slice || !splitV || !gather) return; // the wasm package is not loaded
  registered = true;
  overrideNumeric(identity, (x, _attrs, backend) => shared(x, backend));
  tf.unregisterKernel('Cast', 'wasm');
  tf.registerKernel({
    ...cast,
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      const { dtype } = args.attrs as unknown as tf.CastAttrs;
      return x.dtype === dtype && dtype !== 'string' ? shared(x, args.backend as unknown as WasmBackend) : cast.kernelFunc(args);
    },
  });
  tf.unregisterKernel('GatherV2', 'wasm');
  tf.registerKernel({
    ...gather,
    kernelFunc: (args) => {
      const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
      const out = x.dtype === 'string' ? null : gatherInfo(x, indices, args.attrs as unknown as tf.GatherV2Attrs, args.backend as unknown as WasmBackend);
      return out ?? gather.kernelFunc(args);
    },
  });
  overrideNumeric(slice, (x, attrs, backend) => {
    const { begin, size } = attrs as unknown as tf.SliceAttrs;
    return sliceInfo(x, begin, size, backend);
  });
  overrideNumeric(splitV, (x, attrs, backend) => {
    const { numOrSizeSplits, axis } = attrs as unknown as tf.SplitVAttrs;
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.TensorInfo as tf.Tensor, numOrSizeSplits, ax);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((n) => {
      const size = [...x.shape];
      size[ax] = n;
      const out = sliceInfo(x, [...begin], size, backend);
      begin[ax] += n;
      return out;
    });
  });
}
