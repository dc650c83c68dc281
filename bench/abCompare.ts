/**
 * What the side-by-side benches (bench/replica-start-ab.ts, bench/analysis-graph-create.ts) share:
 * their `--name value` arguments, this process's CPU time and the medians they print.
 */

/** The value after `--name` on the command line, if given. */
export function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

/** CPU time (user + system) this process has used, in ms. */
export function cpuMs(): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

/** The upper median, to 0.1. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return Math.round(s[s.length >> 1]! * 10) / 10
}
