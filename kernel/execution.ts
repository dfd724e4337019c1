// The execution in progress: its AbortSignal is what `hs.signal()` returns and what magics pass to the library,
// so an interrupt stops a sweep between steps and the finished part is kept.
let signal: AbortSignal = new AbortController().signal;

export function currentSignal(): AbortSignal {
  return signal;
}

/** @internal set by the kernel when an execution starts. */
export function setCurrentSignal(s: AbortSignal): void {
  signal = s;
}
