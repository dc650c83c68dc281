/**
 * Bundle validations a worker already did, by folder and folder fingerprint (fingerprint.ts): a
 * group loaded again (a replica after an unload, a reload with the host cache off) skips reading,
 * parsing and checking its manifest, tokenizer and lens files when no file of the folder changed.
 * Any change to any file (its inode, size, mtime or ctime) gives another fingerprint, so a changed
 * bundle is always validated again. Small: a validation is its manifest and file list, no weights.
 */
import type { ValidatedBundle } from '../bundle/open'

/** Folders remembered; the least recently used goes first. */
const MAX_ENTRIES = 32

export class ValidatedBundles {
  readonly #entries = new Map<string, { fingerprint: string; bundle: ValidatedBundle }>()

  /** The validation of `dir` when it was taken with this same fingerprint. */
  get(dir: string, fingerprint: string): ValidatedBundle | null {
    const e = this.#entries.get(dir)
    if (!e || e.fingerprint !== fingerprint) return null
    this.#entries.delete(dir)
    this.#entries.set(dir, e)
    return e.bundle
  }

  /** `fingerprint` must have been taken before `bundle` was validated (never a newer one). */
  put(dir: string, fingerprint: string, bundle: ValidatedBundle): void {
    this.#entries.delete(dir)
    this.#entries.set(dir, { fingerprint, bundle })
    while (this.#entries.size > MAX_ENTRIES) {
      const oldest = this.#entries.keys().next().value
      if (oldest === undefined) break
      this.#entries.delete(oldest)
    }
  }

  get size(): number {
    return this.#entries.size
  }
}
