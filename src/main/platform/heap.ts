/**
 * A full garbage collection on request, for the moments the engine knows a lot of JavaScript
 * garbage was just made and nothing else will soon collect it.
 *
 * After a group loads, its tokenizer.json has been parsed into objects the tokenizer no longer
 * reads (at a 262k vocabulary about 100 MB of the heap, docs/benchmarks.md "At real shapes",
 * memory). The analysis that follows allocates almost nothing on the JavaScript heap (its big
 * buffers are native), so V8 sees no reason to collect, and that garbage stays resident through the
 * first engine batch, where the process peaks, or longer.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

let fullGc: (() => void) | null | undefined

/**
 * V8's own `gc` when the process was started with `--expose-gc`; otherwise the one a fresh context
 * gets while the flag is briefly on (the flag is read when a context is made, so the process's own
 * global is left as it was). Null where neither works.
 */
function findGc(): (() => void) | null {
  const exposed = (globalThis as { gc?: unknown }).gc
  if (typeof exposed === 'function') return exposed as () => void
  try {
    setFlagsFromString('--expose-gc')
    const made: unknown = runInNewContext('gc')
    return typeof made === 'function' ? (made as () => void) : null
  } catch {
    return null
  } finally {
    setFlagsFromString('--no-expose-gc')
  }
}

/** Runs a full, blocking collection; false where this runtime offers no way to ask for one. */
export function collectGarbage(): boolean {
  if (fullGc === undefined) fullGc = findGc()
  if (!fullGc) return false
  fullGc()
  return true
}
