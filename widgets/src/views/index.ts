// The renderer for each view kind.

import type { ViewKind } from '../../../src/report/protocol';
import { attributionMap } from './attribution-map';
import { freezeCurve } from './freeze-curve';
import { knockoutMap } from './knockout-map';
import { layerSwitch } from './layer-switch';
import { logitLens } from './logit-lens';
import { probeAccuracy } from './probe-accuracy';
import { recallGap } from './recall-gap';
import { recoveryCurve } from './recovery-curve';
import type { AnyRendererFactory, RendererFactory } from './types';

const RENDERERS: { [K in ViewKind]: RendererFactory<K> } = {
  'layer-switch': layerSwitch,
  'freeze-curve': freezeCurve,
  'knockout-map': knockoutMap,
  'probe-accuracy': probeAccuracy,
  'logit-lens': logitLens,
  'attribution-map': attributionMap,
  'recall-gap': recallGap,
  'recovery-curve': recoveryCurve,
};

export function rendererFor(kind: ViewKind): AnyRendererFactory {
  return RENDERERS[kind] as unknown as AnyRendererFactory;
}
