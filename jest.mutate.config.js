// The jest configuration `npm run mutate` uses: the suite without the tests
// that start processes or a browser, which mutants of ftrace's core and the
// scenario engine cannot affect and which would slow every mutant down.
import base from './jest.config.js';

export default {
  ...base,
  testPathIgnorePatterns: ['/node_modules/', '/tests/web-', '/tests/fuzz', '/tests/cli'],
};
