// Binary values in widget state travel apart from its JSON, named by `buffer_paths`, never as JSON number lists
// (ipywidgets `_remove_buffers` / `_put_buffers`, same path rules: a dict key is dropped, a list slot nulled):
// as extra ZeroMQ frames from the kernel (kernel/widgets.ts), as base64 text in a saved page's widget state
// (static-page.ts). One module for both; a leaf with no imports, cheap at kernel start.

export type BufferPath = (string | number)[];

export function isBinary(x: unknown): x is ArrayBuffer | ArrayBufferView {
  return x instanceof ArrayBuffer || ArrayBuffer.isView(x);
}

function asBuffer(x: ArrayBuffer | ArrayBufferView): Buffer {
  if (Buffer.isBuffer(x)) return x;
  if (x instanceof ArrayBuffer) return Buffer.from(x);
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}

/** Splits `state` into JSON (a copy; the input is not changed), the paths of binary values, and their bytes. */
export function removeBuffers(state: Record<string, unknown>): {
  state: Record<string, unknown>;
  buffer_paths: BufferPath[];
  buffers: Buffer[];
} {
  const buffer_paths: BufferPath[] = [];
  const buffers: Buffer[] = [];
  const walk = (value: unknown, path: BufferPath): unknown => {
    if (Array.isArray(value)) {
      return value.map((v, i) => {
        if (isBinary(v)) {
          buffer_paths.push([...path, i]);
          buffers.push(asBuffer(v));
          return null;
        }
        return walk(v, [...path, i]);
      });
    }
    if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        if (isBinary(v)) {
          buffer_paths.push([...path, k]);
          buffers.push(asBuffer(v));
        } else {
          out[k] = walk(v, [...path, k]);
        }
      }
      return out;
    }
    return value;
  };
  return { state: walk(state, []) as Record<string, unknown>, buffer_paths, buffers };
}

/**
 * Puts received buffers back at their paths (in place), creating containers a path needs. The paths come
 * from the frontend, so each step is checked (found by test/fuzz/comms.test.ts): only own properties are
 * followed and a `__proto__` segment drops the path (`[["__proto__", "x"]]` polluted every object), and a
 * list index must name a slot or the one just past the end (`[[1e9, 1e9]]` made a billion-slot list that
 * the echo then walked and sent). A path that breaks a rule is dropped, as ipywidgets drops what it cannot place.
 */
export function putBuffers(state: Record<string, unknown>, paths: unknown, buffers: readonly Buffer[]): void {
  if (!Array.isArray(paths)) return;
  const fits = (container: unknown, key: unknown): key is string | number =>
    Array.isArray(container)
      ? Number.isInteger(key) && (key as number) >= 0 && (key as number) <= container.length
      : (typeof key === 'string' && key !== '__proto__') || typeof key === 'number';
  paths.forEach((p, i) => {
    if (!Array.isArray(p) || p.length === 0 || i >= buffers.length) return;
    let obj: Record<string | number, unknown> = state;
    for (let j = 0; j < p.length - 1; j++) {
      const key = p[j];
      if (!fits(obj, key)) return;
      let next = Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
      if (next === null || typeof next !== 'object') {
        next = typeof p[j + 1] === 'number' ? [] : {};
        obj[key] = next;
      }
      obj = next as Record<string | number, unknown>;
    }
    const last = p[p.length - 1];
    if (fits(obj, last)) obj[last] = buffers[i];
  });
}
