// Every magic the kernel knows.
import { backend } from './backend';
import { experimentMagics } from './experiments';
import { hooks } from './hooks';
import { load } from './load';
import { help, lsmagic } from './lsmagic';
import { MagicRegistry } from './registry';
import { spec } from './spec';
import { timingMagics } from './timing';

export function defaultMagics(): MagicRegistry {
  return new MagicRegistry().add(load, backend, hooks, lsmagic, help, spec, ...experimentMagics(), ...timingMagics);
}
