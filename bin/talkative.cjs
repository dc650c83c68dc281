#!/usr/bin/env node
// The npm bin: runs the TypeScript CLI through tsx's CommonJS loader, so `npx talkative` works
// from a clone after `npm ci` with no build step. tsconfig.node.json supplies the @shared alias.
const path = require('node:path')

process.env.TSX_TSCONFIG_PATH ??= path.join(__dirname, '..', 'tsconfig.node.json')
require('tsx/cjs/api').register()
require('../src/cli/index.ts')
