#!/usr/bin/env node
// Launcher: TypeScript through tsx, no build step. `kernel` and `install` are the Jupyter kernel's
// (kernel/main.ts); every other command belongs to the CLI (src/cli/main.ts).
require('tsx/cjs');
const fs = require('node:fs');
const path = require('node:path');

const command = process.argv[2];
if (command === 'kernel' || command === 'install') {
  require('../kernel/main.ts')
    .main(process.argv.slice(2))
    .then((code) => {
      // A running kernel keeps the process alive on its sockets; a failure must not leave it half-started.
      if (code !== 0) process.exit(code);
    });
} else {
  const cli = path.join(__dirname, '..', 'src', 'cli', 'main.ts');
  if (!fs.existsSync(cli)) {
    process.stderr.write(`hopscope: ${cli} does not exist yet; available commands: kernel, install\n`);
    process.exit(1);
  }
  // Call main explicitly: under npx, argv[1] is a .bin symlink, so the module cannot tell it was launched.
  require(cli)
    .main(process.argv.slice(2))
    .then((code) => process.exit(code || Number(process.exitCode ?? 0)));
}
