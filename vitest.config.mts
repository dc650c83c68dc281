import { defineConfig } from 'vitest/config'
import { resolve } from 'node:path'

export default defineConfig({
  resolve: { alias: { '@shared': resolve(import.meta.dirname, 'src/shared') } },
  test: {
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx', 'test/**/*.test.ts'],
    environment: 'node',
    setupFiles: ['test/setup/isolatePlacements.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // ONNX Runtime sessions and worker processes are heavy; two cores here.
    fileParallelism: true,
    maxWorkers: 2
  }
})
