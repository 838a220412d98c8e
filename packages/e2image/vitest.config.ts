import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'e2image',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    // The fixture matrix, built once before the tests (see the file).
    globalSetup: ['test/support/global-setup.ts'],
  },
});
