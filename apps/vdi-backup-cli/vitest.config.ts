import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'vdi-backup-cli',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 300_000,
  },
});
