/**
 * A cheap identity for a bundle folder's contents: every file's inode, size, mtime and ctime (in
 * nanoseconds), hashed. Any write to a file, a rename over it or a `touch` changes its ctime, which
 * user space cannot set back (utimes and `cp -p` restore mtime only), so an unchanged fingerprint
 * means unchanged bytes without reading them. Used to skip re-hashing on a reload.
 */
import { createHash } from 'node:crypto'
import { readdirSync, realpathSync, statSync, type BigIntStats } from 'node:fs'
import path from 'node:path'

/** Deeper than any bundle layout; stops a symlink loop inside a folder. */
const MAX_DEPTH = 8

/** A file that cannot be stat'ed (a dangling link, a loop, no permission) is listed as such. */
function statOrNull(file: string): BigIntStats | null {
  try {
    return statSync(file, { bigint: true })
  } catch {
    return null
  }
}

/**
 * Synchronous calls on purpose: a bundle folder is a few dozen entries, which take ≈ 0.3 ms CPU
 * this way against ≈ 1.3–6 ms as one thread-pool round trip each (a replica takes it on every
 * load; docs/benchmarks.md, "Replicas"). Still a promise, so callers handle errors as before.
 */
export async function fingerprintFolder(dir: string): Promise<string> {
  const root = realpathSync(dir)
  const lines: string[] = [root]
  const walk = (abs: string, rel: string, depth: number): void => {
    const names = readdirSync(abs).sort()
    for (const name of names) {
      const childAbs = path.join(abs, name)
      const childRel = rel ? `${rel}/${name}` : name
      // stat follows symlinks: a link's target is what a load reads.
      const st = statOrNull(childAbs)
      if (!st) {
        lines.push(`${childRel} dangling`)
      } else if (st.isDirectory()) {
        lines.push(`${childRel}/`)
        if (depth < MAX_DEPTH) walk(childAbs, childRel, depth + 1)
      } else {
        lines.push(`${childRel} ${st.dev}:${st.ino} ${st.size} ${st.mtimeNs} ${st.ctimeNs}`)
      }
    }
  }
  walk(root, '', 0)
  return createHash('sha256').update(lines.join('\n')).digest('hex')
}
