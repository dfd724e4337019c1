// %hooks: the hook points of the current model (names, axes, part, layer), filtered.
import { type HookPointInfo, hookPointsOf } from '../library';
import { resolveModel } from './experiment-runner';
import { type Magic, UsageError, parseIntArg, parseNameArg } from './registry';

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

export const hooks: Magic = {
  name: 'hooks',
  summary: 'List the hook points of the current model (or --model VAR), filtered by a regular expression',
  binds: 'HookPointInfo[]',
  define: (c) =>
    c
      .option('--filter <regex>', 'keep names matching this regular expression')
      .option('--part <part>', 'vision | projector | lm')
      .option('--layer <n>', 'only this layer', parseIntArg('--layer'))
      .option('--model <variable>', 'variable holding the model (default: the model of the last %load)')
      .option('--as <name>', 'also bind the list to this variable (it is always bound to _)', parseNameArg('--as')),
  async run({ opts }, ctx) {
    const model = resolveModel(ctx, opts.model as string | undefined);
    let re: RegExp | null = null;
    if (typeof opts.filter === 'string') {
      try {
        re = new RegExp(opts.filter);
      } catch (e) {
        throw new UsageError(`--filter ${JSON.stringify(opts.filter)}: ${(e as Error).message}`);
      }
    }
    const points = hookPointsOf(model).filter(
      (h: HookPointInfo) =>
        (!re || re.test(h.name)) && (opts.part === undefined || h.part === opts.part) && (opts.layer === undefined || h.layer === opts.layer),
    );
    await ctx.keep(points, opts.as as string | undefined, hooks.binds);
    const text = points.map((h) => `${h.name.padEnd(36)} [${h.axes.join(', ')}]`).join('\n') + `\n${points.length} hook points`;
    const html =
      `<table><thead><tr><th>name</th><th>axes</th><th>part</th><th>layer</th></tr></thead><tbody>` +
      points.map((h) => `<tr><td><code>${escape(h.name)}</code></td><td>${escape(h.axes.join(', '))}</td><td>${escape(h.part)}</td><td>${h.layer ?? ''}</td></tr>`).join('') +
      `</tbody></table><p>${points.length} hook points</p>`;
    return { value: points, show: true, bundle: { 'text/plain': text, 'text/html': html } };
  },
};
