#!/usr/bin/env node
/*
 * npm start: build, then open the Electron app where an Electron binary is installed; where none
 * is, say so in one line and start the headless host, which prints one line with its URL.
 * npm run serve -- [--port N] [--host ADDR]: build, then always the headless host.
 */
import { spawn, spawnSync } from 'node:child_process'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import electronBinary from './lib/electron-binary.cjs'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const argv = process.argv.slice(2)
const headlessOnly = argv.includes('--headless')
const hostArgs = argv.filter((a) => a !== '--headless')

function build() {
  const cli = resolve(root, 'node_modules/electron-vite/bin/electron-vite.js')
  const result = spawnSync(process.execPath, [cli, 'build'], { cwd: root, encoding: 'utf8' })
  if (result.status !== 0) {
    process.stderr.write(result.stdout + result.stderr)
    console.error('build failed: see the output above')
    process.exit(result.status ?? 1)
  }
}

// Native libraries print these while the host probes execution providers that are not there;
// the page shows the outcome of every probe, so the terminal only needs the URL.
const PROBE_NOISE = [
  /Couldn't load Vulkan/,
  /dawn\/native\/vulkan/,
  /provider_bridge_ort\.cc/,
  // Blank lines and bare colour resets left over from the lines above.
  // eslint-disable-next-line no-control-regex
  /^\s*(\x1b\[[0-9;]*m)*\s*$/
]

function forward(stream, target, filter) {
  let pending = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk) => {
    pending += chunk
    const lines = pending.split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines)
      if (!filter || !filter.some((re) => re.test(line))) target.write(`${line}\n`)
  })
  stream.on('end', () => pending && target.write(pending))
}

function run(command, args, { filterNoise }) {
  const child = spawn(command, args, {
    cwd: root,
    stdio: ['inherit', filterNoise ? 'pipe' : 'inherit', filterNoise ? 'pipe' : 'inherit']
  })
  if (filterNoise) {
    forward(child.stdout, process.stdout)
    forward(child.stderr, process.stderr, PROBE_NOISE)
  }
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)))
}

build()

const electron = headlessOnly ? undefined : electronBinary.findElectronBinary(root)
if (electron && 'path' in electron) {
  run(electron.path, [resolve(root, 'out/main/index.js')], { filterNoise: false })
} else {
  if (electron) console.log(`${electron.reason}: starting the headless host instead.`)
  run(process.execPath, [resolve(root, 'out/main/host.js'), ...hostArgs], { filterNoise: true })
}
