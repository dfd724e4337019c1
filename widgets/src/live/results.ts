// What the live page (index.ts) answers to the round-trip test (test/widgets/live-roundtrip.test.ts), which
// imports these types: plain data, no DOM or Jupyter types, so the root type check can read this file.

export interface LiveOutput {
  type: string;
  text?: string;
  modelId?: string;
  ename?: string;
  evalue?: string;
}

export interface ExecuteResult {
  status: string;
  outputs: LiveOutput[];
  /** Model ids of the widgets this cell displayed (each drawn into `.live-output[data-model-id]`). */
  widgets: string[];
  /** Views that could not be created or displayed. */
  failures: string[];
}

export interface RestoreResult {
  restored: string[];
  viaControlComm: boolean;
  commInfo: string[];
  failures: string[];
  /** kernel_info requests the second connection needed (1 unless its first `idle` was missed). */
  kernelInfoRequests: number;
  /** Connections made until one came up (1 unless the first stalled). */
  attempts: number;
  /** Milliseconds from the start of the restore to the end of each step. */
  steps: Record<string, number>;
}
