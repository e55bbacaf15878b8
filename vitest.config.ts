import { defineConfig } from 'vitest/config';

// Four layers, run in this order by `npm test`:
//   unit         pure cores and small modules, no sockets
//   integration  real agents on loopback, in-process and as child processes
//   sim          the deterministic simulator (thousands of simulated nodes, seeded)
//   lab          agent processes in Linux network namespaces with real faults (root only)
export default defineConfig({
  test: {
    setupFiles: ['./test/setup.ts'],
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          sequence: { groupOrder: 1 },
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // agents are CPU-heavy; two files at once is what two cores can carry
          maxWorkers: 2,
        },
      },
      {
        extends: true,
        test: {
          name: 'sim',
          sequence: { groupOrder: 2 },
          include: ['test/sim/**/*.test.ts'],
          testTimeout: 180_000,
          maxWorkers: 1,
        },
      },
      {
        extends: true,
        test: {
          name: 'lab',
          sequence: { groupOrder: 3 },
          include: ['test/lab/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 120_000,
          // network namespaces and tens of agent processes: one file at a time
          fileParallelism: false,
          maxWorkers: 1,
        },
      },
    ],
  },
});
