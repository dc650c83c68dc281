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

/**
 * JSON and protobuf of at least this size decoded in JavaScript by a load make garbage worth a
 * blocking collection. A full collection costs tens of ms whatever the garbage (22–29 ms CPU
 * after a demo replica's load, which decoded only its 3.5 kB tokenizer.json, its validation and
 * its cut-down graph being reused): under this size it frees next to nothing and only delays the
 * load, which for a replica is time its device does no work (docs/benchmarks.md, "Devices"). Every
 * real model's tokenizer is above it (GPT-2's 1.4 MB, Qwen3's 11 MB, Gemma-3's 33 MB), and so is a
 * validation or a cut-down graph of the demo's 1.8 MB graph, so those loads still collect. An
 * unload's memory check does not depend on it: the worker collects around each unload itself.
 */
export const COLLECT_AFTER_PARSING_BYTES = 1024 * 1024

/** Whether a load that decoded `parsedBytes` in JavaScript should end with a full collection. */
export function collectsAfterParsing(parsedBytes: number): boolean {
  return parsedBytes >= COLLECT_AFTER_PARSING_BYTES
}

/** Runs a full, blocking collection; false where this runtime offers no way to ask for one. */
export function collectGarbage(): boolean {
  if (fullGc === undefined) fullGc = findGc()
  if (!fullGc) return false
  fullGc()
  return true
}
