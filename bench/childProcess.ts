/**
 * Runs this bench script again in a fresh Node process (so its peak RSS and its ONNX Runtime
 * sessions are its own) and returns the JSON object the child prints as its last stdout line.
 * The child's stderr (its progress lines) goes straight to ours; `env` is added to this
 * process's environment and `execArgv` to this process's Node flags (the analysis benches pass the
 * device workers' allocator settings and V8 flags, so they measure what a worker runs).
 */
import { spawn } from 'node:child_process'

export function runBenchChild<T = Record<string, unknown>>(
  args: string[],
  env: Readonly<Record<string, string>> = {},
  execArgv: readonly string[] = []
): Promise<T> {
  return new Promise((resolve, reject) => {
    const node = [...process.execArgv, ...execArgv, process.argv[1]!, ...args]
    const child = spawn(process.execPath, node, {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...env }
    })
    let out = ''
    child.stdout.on('data', (b: Buffer) => (out += b.toString()))
    child.on('close', (code) => {
      const line = out.trim().split('\n').at(-1) ?? ''
      if (code !== 0 || !line.startsWith('{'))
        reject(new Error(`child ${args.join(' ')} failed (${code})`))
      else resolve(JSON.parse(line) as T)
    })
  })
}
