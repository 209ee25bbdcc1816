import { defineConfig } from 'vitest/config';
import { LongestFirstSequencer } from './test/support/sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each test file starts its own PostgreSQL clusters; two cores run two files at a time.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    setupFiles: ['test/support/setup.ts'],
    // The CLI transpiled once, so that the few hundred processes the tests start skip tsx's loader.
    globalSetup: ['test/support/global-setup.ts'],
    // Longest files first (recorded durations when vitest has no cache of its own): a short tail.
    sequence: { sequencer: LongestFirstSequencer },
  },
});
