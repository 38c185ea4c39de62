// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * filter_parse_regex() of v3.18 (kernel/trace/trace_events_filter.c,
 * before v4.10): a leading `!` negates; a leading `*` matches a suffix; a
 * later `*` makes a prefix match (or a substring match when the pattern also
 * began with `*`) and the pattern stops at that `*`, so `a*b` acts as `a*`.
 */

export type MatchType = 'full' | 'front' | 'middle' | 'end';

export interface ParsedGlob {
  readonly negate: boolean;
  readonly type: MatchType;
  readonly search: string;
}

export function filterParseRegex(pattern: string): ParsedGlob {
  let s = pattern;
  let negate = false;
  if (s.startsWith('!')) {
    negate = true;
    s = s.slice(1);
  }
  let type: MatchType = 'full';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== '*') continue;
    if (i === 0) {
      type = 'end';
      start = 1;
    } else {
      type = type === 'end' ? 'middle' : 'front';
      return { negate, type, search: s.slice(start, i) };
    }
  }
  return { negate, type, search: s.slice(start) };
}

export function globMatches(g: ParsedGlob, name: string): boolean {
  switch (g.type) {
    case 'full':
      return name === g.search;
    case 'front':
      return name.startsWith(g.search);
    case 'middle':
      return name.includes(g.search);
    case 'end':
      return name.endsWith(g.search);
  }
}
