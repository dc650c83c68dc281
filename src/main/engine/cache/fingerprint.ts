/**
 * A cheap identity for a bundle folder's contents: every file's inode, size, mtime and ctime (in
 * nanoseconds), hashed. Any write to a file, a rename over it or a `touch` changes its ctime, which
 * user space cannot set back (utimes and `cp -p` restore mtime only), so an unchanged fingerprint
 * means unchanged bytes without reading them. Used to skip re-hashing on a reload.
 */
import { createHash } from 'node:crypto'
import { promises as fs } from 'node:fs'
import path from 'node:path'

/** Deeper than any bundle layout; stops a symlink loop inside a folder. */
const MAX_DEPTH = 8

export async function fingerprintFolder(dir: string): Promise<string> {
  const root = await fs.realpath(dir)
  const lines: string[] = [root]
  const walk = async (abs: string, rel: string, depth: number): Promise<void> => {
    const names = (await fs.readdir(abs)).sort()
    for (const name of names) {
      const childAbs = path.join(abs, name)
      const childRel = rel ? `${rel}/${name}` : name
      // stat follows symlinks: a link's target is what a load reads.
      const st = await fs.stat(childAbs, { bigint: true }).catch(() => null)
      if (!st) {
        lines.push(`${childRel} dangling`)
      } else if (st.isDirectory()) {
        lines.push(`${childRel}/`)
        if (depth < MAX_DEPTH) await walk(childAbs, childRel, depth + 1)
      } else {
        lines.push(`${childRel} ${st.dev}:${st.ino} ${st.size} ${st.mtimeNs} ${st.ctimeNs}`)
      }
    }
  }
  await walk(root, '', 0)
  return createHash('sha256').update(lines.join('\n')).digest('hex')
}
