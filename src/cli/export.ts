// `hopscope export NOTEBOOK.ipynb --out FILE.html`: one self-contained page (markdown, outputs, widget views
// rendered from the saved widget state), viewable offline with no kernel.
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { exportNotebook } from '../report/static-page';

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('render an executed notebook (with its saved widget state) to a self-contained HTML page')
    .argument('<notebook>', '.ipynb file')
    .requiredOption('--out <file>', 'HTML file to write')
    .option('--no-code', 'hide code cells, show only their outputs')
    .action((notebook: string, o: { out: string; code: boolean }) => {
      fs.writeFileSync(o.out, exportNotebook(notebook, { includeCode: o.code }));
      process.stderr.write(`hopscope: wrote ${o.out}\n`);
    });
}
