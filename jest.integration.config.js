// `npm run test:integration`: the tests that drive outside programs (Debian's
// chromium, trace-cmd, xmllint), worker threads and child processes.
import base from './jest.config.js';

export default { ...base, testMatch: ['<rootDir>/tests/integration/*.test.ts'] };
