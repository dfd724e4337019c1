// Multinomial logistic regression with L2, for linear probes: features standardised on the training set,
// zero initialisation and full-batch gradient descent for a fixed number of steps, so a fit is
// deterministic on a given backend. Every matMul is rank-2 without transpose flags (the wasm fast path).
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors';

export interface LogRegOptions {
  l2: number;
  iterations: number;
  learningRate: number;
}

export interface LogReg {
  classes: number;
  dims: number;
  /** Predicted class per row of X [n × d] (row-major). */
  predict(X: Float32Array, n: number): Int32Array;
  dispose(): void;
}

export function fitLogReg(X: Float32Array, n: number, d: number, y: Int32Array, classes: number, opts: LogRegOptions): LogReg {
  if (X.length !== n * d) throw new InputError(`fitLogReg: X has ${X.length} values, n × d = ${n * d}`);
  if (y.length !== n) throw new InputError(`fitLogReg: ${y.length} labels for ${n} rows`);
  const mean = new Float32Array(d);
  const std = new Float32Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += X[i * d + j] / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) std[j] += (X[i * d + j] - mean[j]) ** 2 / n;
  for (let j = 0; j < d; j++) std[j] = Math.max(Math.sqrt(std[j]), 1e-6);
  const standardise = (A: Float32Array, m: number) => {
    const out = new Float32Array(m * d);
    for (let i = 0; i < m; i++) for (let j = 0; j < d; j++) out[i * d + j] = (A[i * d + j] - mean[j]) / std[j];
    return out;
  };
  const Xs = tf.tensor2d(standardise(X, n), [n, d]);
  const Xt = Xs.transpose();
  const Y = tf.tidy(() => tf.oneHot(tf.tensor1d(y, 'int32'), classes).toFloat());
  let W = tf.zeros([d, classes]);
  let b = tf.zeros([classes]);
  try {
    for (let it = 0; it < opts.iterations; it++) {
      const [W2, b2] = tf.tidy(() => {
        const P = tf.softmax(tf.add(tf.matMul(Xs, W as tf.Tensor2D), b), -1);
        const G = tf.div(tf.sub(P, Y), n) as tf.Tensor2D;
        const gW = tf.add(tf.matMul(Xt as tf.Tensor2D, G), tf.mul(W, opts.l2));
        const gb = tf.sum(G, 0);
        return [tf.sub(W, tf.mul(gW, opts.learningRate)), tf.sub(b, tf.mul(gb, opts.learningRate))];
      });
      W.dispose();
      b.dispose();
      W = W2;
      b = b2;
    }
  } finally {
    tf.dispose([Xs, Xt, Y]);
  }
  const Wf = W;
  const bf = b;
  return {
    classes,
    dims: d,
    predict(A, m) {
      if (A.length !== m * d) throw new InputError(`predict: ${A.length} values for ${m} rows of ${d}`);
      const t = tf.tidy(() => tf.argMax(tf.add(tf.matMul(tf.tensor2d(standardise(A, m), [m, d]), Wf as tf.Tensor2D), bf), -1));
      const out = t.dataSync() as Int32Array;
      t.dispose();
      return out;
    },
    dispose: () => tf.dispose([Wf, bf]),
  };
}

export function accuracy(pred: Int32Array, y: Int32Array): number {
  if (y.length === 0) return NaN;
  let ok = 0;
  for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) ok++;
  return ok / y.length;
}
