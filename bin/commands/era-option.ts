// SPDX-License-Identifier: GPL-2.0-or-later
/* --era and --eras: the kernels a command runs, by name or alias. */
import { CALL_SITES, ERAS, ERA_ALIASES, parseEra, type CallSites, type Era } from '../../kernel-model/limits.js';
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

/** What --callsites says in --help. */
export const CALLSITES_HELP = 'fentry (-mfentry) or mcount (-pg alone, v3.x kernels)';

/** A comma-separated list of call-site kinds, in CALL_SITES order. */
export function callSitesOption(v: string, flag = '--callsites'): CallSites[] {
  const kinds = v.split(',').map((x) => x.trim());
  const bad = kinds.find((k) => !(CALL_SITES as readonly string[]).includes(k));
  if (bad !== undefined) throw new UsageError(`${flag} takes ${CALL_SITES.join(', ')}, not '${bad}'`);
  return CALL_SITES.filter((k) => kinds.includes(k));
}

/** --era and --callsites of a command that runs one scenario: the kernel to boot instead of the scenario's own. */
export function kernelChoice(o: { era?: string; callsites?: string }): { era?: Era; callsites?: CallSites } {
  const kinds = o.callsites === undefined ? undefined : callSitesOption(o.callsites);
  if (kinds && kinds.length !== 1) throw new UsageError('--callsites takes one kind here (compare takes several)');
  return { ...(o.era !== undefined ? { era: eraOption(o.era) } : {}), ...(kinds ? { callsites: kinds[0] } : {}) };
}
