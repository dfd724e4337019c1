// Interventions as data: selectors, the five intervention kinds, and their compilation into run options.
export * from './selectors';
export * from './types';
export { NoOpError, type InterventionRecord, type InterventionReport } from './guard';
export { compileInterventions, intervene, plainRows, type Compiled, type InterveneOptions } from './compile';
export { gatherRows, replaceRows } from './write';
