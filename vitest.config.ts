import { defineConfig } from 'vitest/config'

// Two groups: fast unit tests next to the code (run in parallel), then the
// end-to-end suites under tests/ that start real sandboxes and processes; on a
// 2-core machine those run one file at a time.
export default defineConfig({
  test: {
    globals: true,
    reporters: ['default'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts'],
          sequence: { groupOrder: 0 },
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['tests/**/*.test.ts'],
          sequence: { groupOrder: 1 },
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
})
