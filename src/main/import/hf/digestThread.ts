/**
 * SHA-256 of a file written front to back by positioned writes, computed on a worker thread from
 * the very buffers the writes go out of (SharedArrayBuffers): hashing a 2.4 GB float32 file costs
 * more CPU than converting it, so on the importer's thread it was the largest single cost of the
 * weight stage; on its own thread it runs beside the conversion (docs/import.md "Speed and memory").
 *
 * Each write's bytes are hashed in the order `add` is called, the gaps between writes (and up to the
 * final size) as the zeros they read as. A write behind the end so far (never issued by the
 * streamer) makes the digest unknown. The caller must not change a buffer's bytes until its `add`
 * has resolved. Any failure of the thread (a throw, an exit, a message it cannot read) rejects every
 * pending and later call with an error naming the file: nothing waits forever on a dead thread.
 */
import { Worker } from 'node:worker_threads'

/**
 * The thread's code, plain CommonJS evaluated by the Worker (`eval: true`): nothing to resolve or
 * bundle, so it runs the same from the built app, tsx and the tests. Messages are handled in order.
 */
const DIGEST_THREAD_SOURCE = `
'use strict'
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const hash = createHash('sha256')
const buffers = new Map()
const ZEROS = new Uint8Array(1 << 20)
let end = 0
let inOrder = true
function zeros(n) {
  for (let left = n; left > 0; left -= ZEROS.byteLength) {
    hash.update(left >= ZEROS.byteLength ? ZEROS : ZEROS.subarray(0, left))
  }
}
parentPort.on('message', (m) => {
  if (m.kind === 'buffer') {
    buffers.set(m.id, m.buffer)
  } else if (m.kind === 'add') {
    if (inOrder && m.position < end) inOrder = false
    if (inOrder) {
      zeros(m.position - end)
      hash.update(new Uint8Array(buffers.get(m.id), m.offset, m.length))
      end = m.position + m.length
    }
    parentPort.postMessage({ kind: 'done', seq: m.seq })
  } else if (m.kind === 'finish') {
    let hex = null
    if (inOrder && m.size >= end) {
      zeros(m.size - end)
      hex = hash.digest('hex')
    }
    parentPort.postMessage({ kind: 'done', seq: m.seq, hex })
  } else {
    throw new Error('unknown message ' + JSON.stringify(m.kind))
  }
})
`

interface Pending {
  resolve: (hex: string | null) => void
  reject: (err: Error) => void
}

type Reply = { kind: 'done'; seq: number; hex?: string | null }

export class DigestThread {
  readonly #file: string
  readonly #worker: Worker
  readonly #pending = new Map<number, Pending>()
  readonly #bufferIds = new Map<SharedArrayBuffer, number>()
  #seq = 0
  #failure: Error | null = null
  #closed = false

  /**
   * `file` names the file being hashed in every error. `source` replaces the thread's code (tests
   * use it to make the thread fail).
   */
  constructor(file: string, options: { source?: string } = {}) {
    this.#file = file
    this.#worker = new Worker(options.source ?? DIGEST_THREAD_SOURCE, { eval: true })
    this.#worker.on('message', (m: Reply) => {
      const p = this.#pending.get(m.seq)
      if (!p) return
      this.#pending.delete(m.seq)
      p.resolve(m.hex ?? null)
    })
    this.#worker.on('error', (err: Error) => this.#fail(`failed: ${err.message}`))
    this.#worker.on('messageerror', (err: Error) =>
      this.#fail(`sent an unreadable message: ${err.message}`)
    )
    this.#worker.on('exit', (code) => {
      if (!this.#closed) this.#fail(`stopped unexpectedly (exit code ${code})`)
    })
  }

  /**
   * Hashes `bytes` (a view of a SharedArrayBuffer) as the file's bytes at `position`; resolves
   * once the thread has read them, after which the caller may reuse the buffer.
   */
  async add(bytes: Uint8Array, position: number): Promise<void> {
    const buffer = bytes.buffer
    if (!(buffer instanceof SharedArrayBuffer)) {
      throw new Error(`${this.#file}: the digest thread reads shared buffers only`)
    }
    let id = this.#bufferIds.get(buffer)
    if (id === undefined) {
      id = this.#bufferIds.size
      this.#bufferIds.set(buffer, id)
      this.#post({ kind: 'buffer', id, buffer })
    }
    await this.#request({
      kind: 'add',
      id,
      offset: bytes.byteOffset,
      length: bytes.byteLength,
      position
    })
  }

  /** The hex digest of a file of `size` bytes, or null when the writes did not go in order. */
  async finish(size: number): Promise<string | null> {
    return this.#request({ kind: 'finish', size })
  }

  /** Stops the thread (whatever it was doing); pending calls reject. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#rejectAll(new Error(`${this.#file}: hashing stopped before it finished`))
    await this.#worker.terminate()
  }

  #request(message: Record<string, unknown>): Promise<string | null> {
    const seq = this.#seq++
    // Posted first: a refused post leaves nothing pending, and no reply can come before this returns.
    this.#post({ ...message, seq })
    return new Promise<string | null>((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject })
    })
  }

  #post(message: Record<string, unknown>): void {
    if (this.#failure) throw this.#failure
    if (this.#closed) throw new Error(`${this.#file}: hashing stopped before it finished`)
    this.#worker.postMessage(message)
  }

  #fail(what: string): void {
    this.#failure ??= new Error(`${this.#file}: the thread computing its SHA-256 ${what}`)
    this.#rejectAll(this.#failure)
  }

  #rejectAll(err: Error): void {
    const pending = [...this.#pending.values()]
    this.#pending.clear()
    for (const p of pending) p.reject(err)
  }
}
