// The renderer for each view kind, and how each draws other models compared with its own (issue 15).

import type { ViewKind } from '../../../src/report/protocol';
import type { ViewState } from '../../../src/report/views';
import { el } from '../dom';
import { attributionMap } from './attribution-map';
import { freezeCurve } from './freeze-curve';
import { knockoutMap } from './knockout-map';
import { layerSwitch } from './layer-switch';
import { logitLens } from './logit-lens';
import { probeAccuracy } from './probe-accuracy';
import { recallGap } from './recall-gap';
import { recoveryCurve } from './recovery-curve';
import type { AnyRendererFactory, NamedPlot, RendererFactory, ViewRenderer } from './types';

/**
 * Each kind's renderer, and whether it overlays compared models itself (curves and bars: one colour per model on
 * one plot) or gets one panel per model, stacked with the model's name over each (heat maps, where two models
 * cannot share a cell).
 */
const RENDERERS: { [K in ViewKind]: { factory: RendererFactory<K>; overlays: boolean } } = {
  'layer-switch': { factory: layerSwitch, overlays: true },
  'freeze-curve': { factory: freezeCurve, overlays: true },
  'knockout-map': { factory: knockoutMap, overlays: false },
  'probe-accuracy': { factory: probeAccuracy, overlays: true },
  'logit-lens': { factory: logitLens, overlays: false },
  'attribution-map': { factory: attributionMap, overlays: false },
  'recall-gap': { factory: recallGap, overlays: true },
  'recovery-curve': { factory: recoveryCurve, overlays: true },
};

export function rendererFor(kind: ViewKind): AnyRendererFactory {
  const r = RENDERERS[kind] as unknown as { factory: AnyRendererFactory; overlays: boolean };
  return r.overlays ? r.factory : stacked(r.factory);
}

/**
 * One panel per model, the state's own first. A single model draws exactly as the plain renderer does; clicks in
 * a compared model's panel ask the kernel for nothing, since the kernel's cells run on the state's own model.
 */
function stacked(factory: AnyRendererFactory): AnyRendererFactory {
  return (body, ctx) => {
    const panels: { box: HTMLElement; caption: HTMLElement; renderer: ViewRenderer; label: string | null }[] = [];
    const panel = (i: number) => {
      const box = el('div', { className: 'hs-panel' });
      const caption = el('div', { className: 'hs-panel-caption' });
      box.append(caption);
      body.append(box);
      const renderer = factory(box, i === 0 ? ctx : { ...ctx, runCell: () => undefined });
      return { box, caption, renderer, label: null as string | null };
    };
    return {
      async update(state: ViewState) {
        const models = [{ label: state.label, data: state.data }, ...state.compare];
        while (panels.length < models.length) panels.push(panel(panels.length));
        while (panels.length > models.length) {
          const p = panels.pop()!;
          p.renderer.dispose();
          p.box.remove();
        }
        for (const [i, m] of models.entries()) {
          const p = panels[i];
          p.label = models.length > 1 ? m.label : null;
          p.caption.textContent = p.label ?? '';
          p.caption.hidden = p.label === null;
          // The other panels ride along as `compare`: a stacked renderer draws `data` alone and reads them only to
          // put every panel on one colour scale.
          await p.renderer.update({ ...state, label: m.label, data: m.data, compare: models.filter((_, j) => j !== i) } as ViewState);
        }
      },
      plots(): NamedPlot[] {
        return panels.flatMap((p) => p.renderer.plots().map((pl) => ({ name: p.label ? `${p.label}-${pl.name}` : pl.name, div: pl.div })));
      },
      dispose() {
        for (const p of panels.splice(0)) {
          p.renderer.dispose();
          p.box.remove();
        }
      },
    };
  };
}
