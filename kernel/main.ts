// `hopscope kernel` (started by Jupyter from kernel.json) and `hopscope install` (writes that kernel.json).
// bin/hopscope.js routes these two here; `registerKernelCommands` lets the CLI list them in its --help.
import { Command, CommanderError } from 'commander';
import { install } from './install';
import { startKernel } from './start';

export function registerKernelCommands(program: Command): Command {
  program
    .command('kernel')
    .description('Start the Jupyter kernel (Jupyter runs this from kernel.json)')
    .requiredOption('--config-path <file>', 'connection file written by Jupyter')
    .action(async (o: { configPath: string }) => {
      await startKernel(o.configPath);
    });
  program
    .command('install')
    .description('Install the "TypeScript (hopscope)" kernelspec and the widget frontend into Jupyter')
    .option('--user', 'into the per-user Jupyter data folder (default)')
    .option('--sys-prefix', 'into the Python environment that runs Jupyter (conda env, venv)')
    .option('--prefix <dir>', 'into <dir>/share/jupyter')
    .option('--python <path>', 'the Python that runs Jupyter (default: found from jupyter on PATH, python3, python)')
    .option('--name <name>', 'kernelspec folder name', 'hopscope')
    .action((o: { user?: boolean; sysPrefix?: boolean; prefix?: string; python?: string; name: string }) => {
      install({ ...o, log: (s) => process.stdout.write(s + '\n') });
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = registerKernelCommands(new Command('hopscope').exitOverride());
  program.commands.forEach((c) => c.exitOverride());
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    process.stderr.write(`hopscope: ${(e as Error).message}\n`);
    return 1;
  }
}
