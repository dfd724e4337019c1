// %lsmagic and %help: what magics exist and how to call one.
import { type Magic, UsageError } from './registry';

export const lsmagic: Magic = {
  name: 'lsmagic',
  summary: 'List the magics',
  define: (c) => c,
  async run(_p, ctx) {
    const lines = ctx.registry
      .all()
      .map((m) => `${(m.cell ? '%%' : '%') + m.name}`.padEnd(13) + m.summary)
      .sort();
    const text = `${lines.join('\n')}\n\n%help <magic> or %<magic> --help for the options. Results are bound to _ (and --as NAME).`;
    return { value: undefined, show: true, bundle: { 'text/plain': text } };
  },
};

export const help: Magic = {
  name: 'help',
  summary: 'Show how to call a magic: %help recallgap',
  define: (c) => c.argument('<magic>', 'magic name, with or without %'),
  async run({ args }, ctx) {
    const m = ctx.registry.find(String(args[0]));
    if (!m) throw new UsageError(`%help: no magic named ${String(args[0])}; %lsmagic lists them`);
    return { value: undefined, show: true, bundle: { 'text/plain': ctx.registry.help(m) } };
  },
};
