// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Scenario results as JUnit XML, in the form GitLab's junit reports and the
 * common GitHub actions read: one <testsuite> per scenario file, one
 * <testcase> per check with the file and line of the step that made it, and
 * a <failure> whose text is the check's detail.
 */
import type { ScenarioResult } from '../../scenarios/engine/run.js';

export interface JunitSuite {
  result: ScenarioResult;
  /** Wall time the scenario took. */
  seconds: number;
}

/** Text and attribute values: escaped, without the control characters XML 1.0 forbids. */
export function xmlEscape(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function attrs(a: Record<string, string | number | undefined>): string {
  return Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${xmlEscape(String(v))}"`)
    .join('');
}

const secs = (s: number) => s.toFixed(3);

export function junitXml(suites: readonly JunitSuite[], name = 'ftrace-sim'): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const count = (f: (r: ScenarioResult) => number) => suites.reduce((a, s) => a + f(s.result), 0);
  const cases = (r: ScenarioResult) => Math.max(r.checks.length, 1);
  const failures = (r: ScenarioResult) => r.checks.filter((c) => !c.passed).length + (r.checks.length === 0 && !r.passed ? 1 : 0);
  const total = suites.reduce((a, s) => a + s.seconds, 0);
  out.push(`<testsuites${attrs({ name, tests: count(cases), failures: count(failures), errors: 0, time: secs(total) })}>`);
  for (const { result: r, seconds } of suites) {
    out.push(`  <testsuite${attrs({ name: r.name, tests: cases(r), failures: failures(r), errors: 0, skipped: r.skipped ? 1 : 0, time: secs(seconds), file: r.file })}>`);
    // A scenario on a kernel it does not describe is one skipped case.
    if (r.skipped) out.push(`    <testcase${attrs({ name: `on ${r.era} ${r.callsites}`, classname: r.name, file: r.file })}>`, `      <skipped${attrs({ message: r.skipped })}/>`, '    </testcase>');
    // A scenario without checks still shows up, as one case: that it ran.
    const checks = r.skipped ? [] : r.checks.length ? r.checks : [{ name: 'scenario ran', passed: r.passed, detail: r.passed ? 'ok' : 'failed', line: undefined }];
    for (const c of checks) {
      const head = `    <testcase${attrs({ name: c.name, classname: r.name, file: r.file, line: c.line })}`;
      if (c.passed) out.push(`${head}/>`);
      else {
        const message = c.detail.split('\n')[0]!;
        out.push(`${head}>`, `      <failure${attrs({ message, type: 'check' })}>${xmlEscape(c.detail)}</failure>`, '    </testcase>');
      }
    }
    if (r.warnings.length) out.push(`    <system-out>${xmlEscape(r.warnings.join('\n'))}</system-out>`);
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}
