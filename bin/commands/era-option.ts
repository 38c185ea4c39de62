// SPDX-License-Identifier: GPL-2.0-or-later
/* --era and --eras: the kernels a command runs, by name or alias. */
import { ERAS, ERA_ALIASES, parseEra, type Era } from '../../kernel-model/limits.js';
import { UsageError } from '../output.js';

const NAMES = [...ERAS, ...Object.keys(ERA_ALIASES)].join(', ');

/** What --era says in --help. */
export const ERA_HELP = `the kernel: ${ERAS.join(', ')} (3.18 is also called seed)`;

export function eraOption(v: string, flag = '--era'): Era {
  const era = parseEra(v);
  if (!era) throw new UsageError(`${flag} is one of ${NAMES}, not '${v}'`);
  return era;
}

/** A comma-separated list of eras, in ERAS order. */
export function erasOption(v: string, flag = '--eras'): Era[] {
  const eras = v.split(',').map((x) => eraOption(x.trim(), flag));
  return ERAS.filter((e) => eras.includes(e));
}
