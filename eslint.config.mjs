// Lint keeps the process boundaries honest: shared code is pure TypeScript, the renderer never
// reaches Node or Electron, and main never pulls in renderer code.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import reactHooks from 'eslint-plugin-react-hooks'
import importX from 'eslint-plugin-import-x'
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript'

const NODE_BUILTINS = [
  'assert',
  'buffer',
  'child_process',
  'cluster',
  'crypto',
  'dgram',
  'dns',
  'events',
  'fs',
  'fs/promises',
  'http',
  'http2',
  'https',
  'module',
  'net',
  'os',
  'path',
  'perf_hooks',
  'process',
  'readline',
  'stream',
  'tls',
  'url',
  'util',
  'v8',
  'vm',
  'worker_threads',
  'zlib'
]

const noElectronNoNode = {
  paths: [
    { name: 'electron', message: 'Only src/main glue and src/preload may import electron.' },
    ...NODE_BUILTINS.map((name) => ({
      name,
      message: 'Shared and renderer code runs in the browser too: no Node built-ins.'
    }))
  ],
  patterns: [
    {
      group: ['node:*'],
      message: 'Shared and renderer code runs in the browser too: no Node built-ins.'
    },
    { group: ['electron/*'], message: 'Only src/main glue and src/preload may import electron.' }
  ]
}

const noRendererInMain = {
  group: ['@renderer/*', '**/renderer/**', '**/renderer'],
  message: 'Main-process code must not import the renderer.'
}

/**
 * The layers inside src/main, lowest first (docs/architecture.md draws them). A folder imports its
 * own files and the layers below it: never a layer above, never a neighbour in its own layer.
 * `import` (model and checkpoint readers) sits above the engine and below every user of models.
 */
const MAIN_LAYERS = [
  ['platform'],
  ['router', 'http'],
  ['engine'],
  ['import'],
  ['worker'],
  ['devices', 'system', 'sessions'],
  ['services'],
  ['api', 'ipc'],
  ['host', 'windows']
]
// Above every layer: the Electron entry and the command line.
const ENTRIES = ['./src/main/index.ts', './src/cli']

const layerZones = MAIN_LAYERS.flatMap((layer, level) =>
  layer.map((folder) => {
    const above = MAIN_LAYERS.slice(level + 1).flat()
    const peers = layer.filter((other) => other !== folder)
    return {
      target: `./src/main/${folder}`,
      from: [...[...peers, ...above].map((f) => `./src/main/${f}`), ...ENTRIES],
      message: `src/main/${folder} may import only the layers below it (docs/architecture.md).`
    }
  })
)

const OUTSIDE_ENGINE = [
  ...MAIN_LAYERS.flat()
    .filter((folder) => folder !== 'engine')
    .map((folder) => `./src/main/${folder}`),
  ...ENTRIES
]
const OUTSIDE_WORKER = OUTSIDE_ENGINE.filter((t) => t !== './src/main/worker').concat(
  './src/main/engine'
)

const zones = [
  ...layerZones,
  {
    target: OUTSIDE_ENGINE,
    from: './src/main/engine',
    except: ['./index.ts'],
    message: 'Import the engine through src/main/engine/index.ts, its public face.'
  },
  {
    target: OUTSIDE_WORKER,
    from: './src/main/worker',
    except: ['./protocol.ts'],
    message: 'Outside the worker process only its protocol (src/main/worker/protocol.ts) is known.'
  },
  {
    target: './src/shared',
    from: ['./src/main', './src/cli', './src/preload', './src/renderer'],
    message: 'src/shared is the contract: it imports nothing from the processes that use it.'
  }
]

export default tseslint.config(
  {
    ignores: [
      'out/**',
      'dist/**',
      'node_modules/**',
      'artifacts/**',
      'test-results/**',
      'playwright-report/**',
      '.cache/**',
      '.tmp/**',
      '**/*.d.ts'
    ]
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module'
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }
      ],
      'no-console': 'off'
    }
  },
  {
    files: ['**/*.mjs', '**/*.cjs', 'scripts/**/*.js', 'bin/**/*.js'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        URL: 'readonly',
        Buffer: 'readonly'
      }
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' }
  },
  {
    files: ['src/shared/**/*.{ts,tsx}', 'src/renderer/**/*.{ts,tsx}'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', noElectronNoNode] }
  },
  {
    files: ['src/renderer/**/*.{ts,tsx}'],
    plugins: { 'react-hooks': reactHooks },
    rules: reactHooks.configs.recommended.rules
  },
  {
    files: ['src/**/*.{ts,tsx}'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [
        createTypeScriptImportResolver({
          project: ['tsconfig.node.json', 'tsconfig.web.json'],
          noWarnOnMultipleProjects: true
        })
      ]
    },
    rules: { 'import-x/no-restricted-paths': ['error', { zones }] }
  },
  {
    // Services, engine, workers and the headless host run without Electron: only the thin glue
    // (index.ts, windows/, ipc/electron*) may import it, and only type-only elsewhere.
    files: ['src/main/**/*.ts'],
    ignores: ['src/main/index.ts', 'src/main/windows/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'electron',
              message:
                'Inject what you need; only src/main/index.ts and src/main/windows/ import electron.',
              allowTypeImports: true
            }
          ],
          patterns: [noRendererInMain]
        }
      ]
    }
  },
  {
    files: ['src/main/index.ts', 'src/main/windows/**/*.ts', 'src/cli/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [noRendererInMain] }]
    }
  },
  {
    // The host and the CLI are plain Node: not even a type import of electron.
    files: ['src/main/host/**/*.ts', 'src/cli/**/*.ts', 'src/main/worker/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'electron', message: 'This code runs in plain Node, never in Electron.' }
          ],
          patterns: [noRendererInMain]
        }
      ]
    }
  }
)
