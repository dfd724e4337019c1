// The layers of hopscope, enforced (npm run lint:deps; test/arch/layers.test.ts runs it in CI):
//   engine → io → (models, data) → interventions → experiments → (cli | kernel | report | queue)
// Each layer imports only layers to its left; src/train (the teaching model) may import experiments; the
// browser widgets import nothing from src/ but the pure wire modules (protocol, view schemas); no cycles.
// Type-only imports are erased before the check (tsPreCompilationDeps: false): a type is a contract, not a
// dependency, so e.g. experiments may name the protocol's ViewKind.

const LAYERS = ['engine', 'io', 'models|data', 'interventions', 'experiments', 'train', 'cli|report|queue'];
const dir = (names) => `^src/(${names})/`;

/** Layer i may not import any layer to its right (nor the kernel, nor the library entry). */
const upward = LAYERS.slice(0, -1).map((names, i) => ({
  name: `layer-${names.replace(/\|/g, '-')}`,
  comment: `${names} sits left of ${LAYERS.slice(i + 1).join(', ')}: it may not import them`,
  severity: 'error',
  from: { path: dir(names) },
  to: { path: [dir(LAYERS.slice(i + 1).join('|')), '^kernel/', '^src/index\\.ts$'] },
}));

/** What the browser bundle may load from src/: pure TypeScript, no Node APIs, no packages. */
const WIRE = [
  '^src/report/(protocol|views|view-wire)\\.ts$',
  '^src/experiments/(switch-layer|resolution)\\.ts$',
  '^src/io/image/header\\.ts$',
];

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import cycle ties two modules into one; split the shared part out (issue 13 found plan↔scheduler, source↔sources).',
      severity: 'error',
      from: { path: '^(src|kernel|widgets/src)/' },
      to: { circular: true },
    },
    ...upward,
    {
      name: 'peer-cli-report',
      comment: 'cli, report and queue are peers at the top: report (the view schemas, static pages) must not depend on the CLI',
      severity: 'error',
      from: { path: '^src/report/' },
      to: { path: ['^src/cli/', '^src/queue/'] },
    },
    {
      name: 'library-not-kernel',
      comment: 'The library never imports the Jupyter kernel (the kernel imports the library).',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^kernel/' },
    },
    {
      name: 'widgets-apart',
      comment: 'The widgets are a browser bundle: from src/ they import only the pure wire modules.',
      severity: 'error',
      from: { path: '^widgets/src/' },
      to: { path: '^src/', pathNot: WIRE },
    },
    {
      name: 'wire-is-pure',
      comment: 'The wire modules run in the browser too: they import only each other (no Node APIs, no packages).',
      severity: 'error',
      from: { path: WIRE },
      to: { pathNot: WIRE },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist|lib|labextension)/' },
    tsPreCompilationDeps: false,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
    moduleSystems: ['cjs', 'es6'],
  },
};
