// The switch layer of cross-patching (Cohen et al. §4, Fig. 3): the first patched layer at which the runs name the
// target (the entity actually shown) at least as often as the donor, and some do. One rule, read by the
// experiment's summary, the widget's view and the teaching model's evaluation (issue 13 found three that differed).

/** First layer whose target fraction reaches the donor fraction (and is above 0); null when none does. */
export function switchLayer(layers: readonly number[], donor: readonly number[], target: readonly number[]): number | null {
  for (let i = 0; i < layers.length; i++) {
    if (Number.isFinite(donor[i]) && Number.isFinite(target[i]) && target[i] >= donor[i] && target[i] > 0) return layers[i];
  }
  return null;
}

/** One run's switch layer: the first layer from which it never names the donor again and names the target there; null if none. */
export function pairSwitchLayer(layers: readonly number[], namesDonor: readonly boolean[], namesTarget: readonly boolean[]): number | null {
  for (let i = 0; i < layers.length; i++) if (namesTarget[i] && namesDonor.slice(i).every((d) => !d)) return layers[i];
  return null;
}
