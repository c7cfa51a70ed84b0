import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // forks: a native crash still ends with a summary, and errors thrown by the addon keep their
    // class (vmThreads would break `instanceof TypeError`).
    pool: 'forks',
    testTimeout: 60_000,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
