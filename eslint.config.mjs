// Lint keeps the process boundaries honest: shared code is pure TypeScript, the renderer never
// reaches Node or Electron, and main never pulls in renderer code.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import reactHooks from 'eslint-plugin-react-hooks'

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
