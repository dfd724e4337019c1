// A float32 tensor whose values are written once, straight into the backend's own storage.
// Loading used to build each weight in a JS Float32Array and let tf.tensor copy it into the wasm heap: two
// copies, and two sets of freshly touched pages, which on a VM cost more than the copy (issue 20: 4.0 s of
// a 9.4 s load of 1.15 GB was BackendWasm.move). On wasm the tensor is allocated first and `fill` writes into
// a view of its heap memory; elsewhere (cpu keeps the array it is given; tensorflow copies once anyway) a
// plain array is filled and handed over.
import * as tf from '@tensorflow/tfjs-core';
import { adviseHugePages } from './native-matmul';

interface HeapBackend {
  makeOutput?(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap?(t: tf.TensorInfo): Float32Array;
  disposeData(dataId: object, force?: boolean): boolean;
}

/**
 * `fill` gets the destination (row-major, exactly the shape's size) and must not allocate tensors: on wasm
 * a heap growth could move the memory under a non-shared view. If it throws, nothing is left allocated.
 */
export function filledTensor(shape: number[], fill: (dst: Float32Array) => void): tf.Tensor {
  const backend = tf.backend() as unknown as HeapBackend;
  if (tf.getBackend() === 'wasm' && backend.makeOutput && backend.typedArrayFromHeap) {
    const info = backend.makeOutput(shape, 'float32');
    try {
      const view = backend.typedArrayFromHeap(info);
      // Fresh heap pages are faulted in by the fill; in 2 MB pages where the machine allows it (native-matmul.ts).
      adviseHugePages(view);
      fill(view);
    } catch (e) {
      backend.disposeData(info.dataId, true);
      throw e;
    }
    return tf.engine().makeTensorFromTensorInfo(info);
  }
  const dst = new Float32Array(shape.reduce((a, b) => a * b, 1));
  fill(dst);
  return tf.tensor(dst, shape, 'float32');
}
