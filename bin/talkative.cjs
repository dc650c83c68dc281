#!/usr/bin/env node
// The npm bin. It runs the built command line, out/main/cli.js (`npm run build` makes it with the
// rest of the app): plain JavaScript that needs no dev dependency and starts in a fraction of a
// second. In a clone whose build is missing, or older than the sources, it runs the sources
// through tsx instead (a dev dependency), so `npx talkative` works right after `npm ci` and never
// runs stale code; `npm run build` makes it fast again.
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const built = path.join(root, 'out', 'main', 'cli.js')
const sourceDirs = ['src/cli', 'src/main', 'src/shared'].map((d) => path.join(root, d))

/** The newest modification time of any file under `dir` (0 when it does not exist). */
function newest(dir) {
  let entries
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true })
  } catch {
    return 0
  }
  let latest = 0
  for (const e of entries) {
    const full = path.join(dir, e.name)
    const t = e.isDirectory() ? newest(full) : fs.statSync(full).mtimeMs
    if (t > latest) latest = t
  }
  return latest
}

function builtIsCurrent() {
  let builtAt
  try {
    builtAt = fs.statSync(built).mtimeMs
  } catch {
    return false
  }
  // An install without sources has only the build; a clone's build must be newer than its sources.
  return sourceDirs.every((dir) => newest(dir) <= builtAt)
}

if (builtIsCurrent()) {
  require(built)
} else {
  let register
  try {
    register = require('tsx/cjs/api').register
  } catch {
    process.stderr.write(
      `talkative: the command line is not built (${path.relative(process.cwd(), built)} is missing or older than the sources) and tsx is not installed to run the sources: run \`npm run build\`\n`
    )
    process.exit(1)
  }
  // tsconfig.node.json supplies the @shared alias.
  process.env.TSX_TSCONFIG_PATH ??= path.join(root, 'tsconfig.node.json')
  register()
  require('../src/cli/index.ts')
}
