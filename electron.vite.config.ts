import { resolve } from 'node:path'
import { defineConfig } from 'electron-vite'
import react from '@vitejs/plugin-react'

const shared = { '@shared': resolve(__dirname, 'src/shared') }

// One main build, several Node entries: the Electron main process, the headless host (plain Node,
// no Electron), the per-device inference worker, the command line and the import's tokenizer
// thread (a worker_threads entry, src/main/import/hf/tokenizerThread.ts). Everything in
// `dependencies` (onnxruntime-node above all, a native addon) stays external.
export default defineConfig({
  main: {
    resolve: { alias: shared },
    build: {
      rolldownOptions: {
        input: {
          index: resolve(__dirname, 'src/main/index.ts'),
          host: resolve(__dirname, 'src/main/host/index.ts'),
          worker: resolve(__dirname, 'src/main/worker/index.ts'),
          cli: resolve(__dirname, 'src/cli/index.ts'),
          tokenizerThread: resolve(__dirname, 'src/main/import/hf/tokenizerThread.ts')
        }
      }
    }
  },
  preload: {
    resolve: { alias: shared },
    build: {
      // A sandboxed preload can only require a handful of modules: ship it as one CommonJS file.
      externalizeDeps: false,
      rolldownOptions: {
        input: { index: resolve(__dirname, 'src/preload/index.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' }
      }
    }
  },
  renderer: {
    root: resolve(__dirname, 'src/renderer'),
    resolve: { alias: { ...shared, '@renderer': resolve(__dirname, 'src/renderer/src') } },
    plugins: [react()],
    build: {
      rolldownOptions: { input: { index: resolve(__dirname, 'src/renderer/index.html') } }
    }
  }
})
