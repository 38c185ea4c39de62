// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The Stryker test runner `npm run mutate` uses: the unit test files, run in
 * one long-lived process with jest's globals (describe, test, test.each, the
 * hooks, expect) and no jest around them.
 *
 * Stryker builds every mutant into one copy of the sources and chooses the
 * active one at run time. Jest cannot take advantage of that: each run builds
 * a fresh module registry and loads every test file again, seconds per mutant
 * before a single test runs. Here the test files are imported once, and a
 * mutant's run calls only the tests that cover it, stopping at the first that
 * fails.
 *
 * Coverage is per test, beforeAll hooks included: most tests boot a kernel in
 * a hook, and a mutant that only the boot reaches must still be tried against
 * those tests rather than counted as static (reached at load, needing every
 * test and a fresh process).
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { PluginKind, declareClassPlugin } from '@stryker-mutator/api/plugin';
import { DryRunStatus, MutantRunStatus, TestStatus, toMutantRunResult } from '@stryker-mutator/api/test-runner';
import { expect } from 'expect';
import { bind } from 'jest-each';
import { mutationTestFiles } from './files.mjs';

const NS = '__stryker__';

function ns() {
  return (globalThis[NS] ??= {});
}

class Block {
  constructor(name, parent, file) {
    this.name = name;
    this.parent = parent;
    this.file = file;
    this.children = [];
    this.beforeAll = [];
    this.afterAll = [];
    this.beforeEach = [];
    this.afterEach = [];
    this.skip = parent?.skip ?? false;
  }

  get path() {
    return this.parent ? `${this.parent.path} ${this.name}`.trimStart() : '';
  }

  *tests() {
    for (const c of this.children) {
      if (c instanceof Block) yield* c.tests();
      else yield c;
    }
  }
}

/* The registry the test files fill in through jest's global names. */
class Registry {
  files = [];
  tests = new Map();
  current;

  load(file) {
    const root = new Block('', undefined, file);
    this.files.push(root);
    this.current = root;
  }

  describe(name, fn, skip = false) {
    const parent = this.current;
    const block = new Block(String(name), parent, parent.file);
    block.skip ||= skip;
    parent.children.push(block);
    this.current = block;
    try {
      fn();
    } finally {
      this.current = parent;
    }
  }

  test(name, fn, skip = false) {
    const block = this.current;
    const full = `${block.path} ${name}`.trimStart();
    // Ids must be unique across files; jest's full names are, nearly always.
    const id = this.tests.has(full) ? `${full} (${path.basename(block.file)})` : full;
    const t = { id, name: full, fn, block, skip: skip || block.skip || !fn };
    block.children.push(t);
    this.tests.set(id, t);
  }

  installGlobals() {
    const g = globalThis;
    const test = (name, fn) => this.test(name, fn);
    test.skip = (name, fn) => this.test(name, fn, true);
    test.todo = (name) => this.test(name, undefined, true);
    test.each = bind(test);
    test.skip.each = bind(test.skip);
    const describe = (name, fn) => this.describe(name, fn);
    describe.skip = (name, fn) => this.describe(name, fn, true);
    describe.each = bind(describe, false);
    const hook = (kind) => (fn) => this.current[kind].push(fn);
    Object.assign(g, {
      test,
      it: test,
      describe,
      beforeAll: hook('beforeAll'),
      afterAll: hook('afterAll'),
      beforeEach: hook('beforeEach'),
      afterEach: hook('afterEach'),
      expect,
    });
  }
}

function message(err) {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/*
 * One run over the chosen tests: each block's beforeAll hooks run once, before
 * its first chosen test, and its afterAll hooks always run (they close the
 * kernels the hooks booted).
 */
async function runTests(files, chosen, { bail, onHooks, perTest }) {
  const results = [];
  let stop = false;
  const record = (t, status, started, failureMessage) => {
    const r = { id: t.id, name: t.name, fileName: t.block.file, timeSpentMs: performance.now() - started };
    results.push(status === TestStatus.Failed ? { ...r, status, failureMessage } : { ...r, status });
    if (status === TestStatus.Failed && bail) stop = true;
  };

  const runBlock = async (block, eachChain) => {
    const mine = [...block.tests()].filter((t) => chosen(t) && !t.skip);
    if (mine.length === 0 || stop) return;
    let hookError;
    onHooks?.(block, true);
    try {
      for (const h of block.beforeAll) await h();
    } catch (err) {
      hookError = message(err);
    }
    onHooks?.(block, false);
    const befores = [...eachChain.befores, ...block.beforeEach];
    const afters = [...block.afterEach, ...eachChain.afters];
    for (const c of block.children) {
      if (stop) break;
      if (c instanceof Block) {
        if (!hookError) await runBlock(c, { befores, afters });
        continue;
      }
      if (!chosen(c) || c.skip) continue;
      const started = performance.now();
      if (hookError) {
        record(c, TestStatus.Failed, started, `beforeAll: ${hookError}`);
        continue;
      }
      // Only the dry run's coverage is read: a mutant's run records none per test.
      if (perTest) ns().currentTestId = c.id;
      try {
        for (const h of befores) await h();
        await c.fn();
        for (const h of afters) await h();
        record(c, TestStatus.Success, started);
      } catch (err) {
        record(c, TestStatus.Failed, started, message(err));
      } finally {
        ns().currentTestId = undefined;
      }
    }
    onHooks?.(block, true);
    try {
      for (const h of block.afterAll) await h();
    } catch {
      // A failing cleanup fails nothing that ran; the next boot starts afresh.
    }
    onHooks?.(block, false);
  };

  for (const root of files) {
    if (stop) break;
    await runBlock(root, { befores: [], afters: [] });
  }
  return results;
}

export class FtraceSimTestRunner {
  static inject = [];
  registry;
  loadError;

  capabilities() {
    // A mutant reached at load time needs a fresh process: Stryker starts one.
    return { reloadEnvironment: false };
  }

  /* Loaded at the first run, not at init: a static mutant must be active
   * while the modules load, and Stryker starts a new process for each. */
  async ensureLoaded() {
    if (this.registry || this.loadError) return;
    const registry = new Registry();
    registry.installGlobals();
    try {
      for (const file of mutationTestFiles(process.cwd())) {
        registry.load(file);
        await import(pathToFileURL(file).href);
      }
      this.registry = registry;
    } catch (err) {
      this.loadError = message(err);
    }
  }

  async dryRun({ coverageAnalysis }) {
    const n = ns();
    n.activeMutant = undefined;
    await this.ensureLoaded();
    if (this.loadError) return { status: DryRunStatus.Error, errorMessage: this.loadError };
    const perTest = coverageAnalysis === 'perTest';
    const hookIds = new Map();
    const tests = await runTests(this.registry.files, () => true, {
      bail: false,
      perTest,
      // What a block's hooks reach is covered by each test under that block.
      onHooks: perTest
        ? (block, entering) => {
            const id = `hooks of ${block.file}#${block.path}`;
            hookIds.set(id, block);
            n.currentTestId = entering ? id : undefined;
          }
        : undefined,
    });
    const coverage = n.mutantCoverage ?? { static: {}, perTest: {} };
    if (perTest) {
      for (const [id, block] of hookIds) {
        const hit = coverage.perTest[id];
        delete coverage.perTest[id];
        if (!hit) continue;
        for (const t of block.tests()) {
          const into = (coverage.perTest[t.id] ??= {});
          for (const [m, count] of Object.entries(hit)) into[m] = (into[m] ?? 0) + count;
        }
      }
    }
    return {
      status: DryRunStatus.Complete,
      tests,
      mutantCoverage: coverageAnalysis === 'off' ? undefined : coverage,
    };
  }

  async mutantRun({ activeMutant, testFilter, disableBail, hitLimit }) {
    const n = ns();
    n.activeMutant = activeMutant.id;
    n.mutantCoverage = { static: {}, perTest: {} };
    n.hitLimit = hitLimit;
    n.hitCount = hitLimit === undefined ? undefined : 0;
    try {
      await this.ensureLoaded();
      if (this.loadError) return { status: MutantRunStatus.Error, errorMessage: this.loadError };
      const only = testFilter ? new Set(testFilter) : undefined;
      const tests = await runTests(this.registry.files, (t) => !only || only.has(t.id), { bail: !disableBail });
      if (n.hitLimit !== undefined && n.hitCount > n.hitLimit) {
        return { status: MutantRunStatus.Timeout, reason: `hit limit reached (${n.hitCount}/${n.hitLimit})` };
      }
      return toMutantRunResult({ status: DryRunStatus.Complete, tests }, disableBail);
    } finally {
      n.activeMutant = undefined;
      n.hitCount = undefined;
      n.hitLimit = undefined;
    }
  }
}

export const strykerPlugins = [declareClassPlugin(PluginKind.TestRunner, 'ftrace-sim', FtraceSimTestRunner)];
