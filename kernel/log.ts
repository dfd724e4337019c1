// The kernel's own diagnostics (rejected messages, crashes in handlers) go to the terminal that runs Jupyter,
// never into a notebook cell: process.stdout/stderr are redirected to iopub once the kernel starts.
const rawStderr = process.stderr.write.bind(process.stderr);

export function log(message: string): void {
  rawStderr(`[hopscope kernel ${new Date().toISOString()}] ${message}\n`);
}
