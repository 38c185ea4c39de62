// Jest runs the TypeScript sources as ESM through SWC; tsc does the type check separately.
// `npm test` runs the unit suite (tests/*.test.ts); `npm run test:integration` runs
// tests/integration/, which drives outside programs: a browser, trace-cmd, xmllint,
// worker threads and child processes.
export default {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/tests/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' } }],
  },
  testTimeout: 60000,
  // Jest's default leaves one core idle; the tests are CPU-bound guest runs.
  maxWorkers: '100%',
};
