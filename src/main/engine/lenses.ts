/**
 * A group's lenses, loaded on first use into their own small sessions (projection and head) with
 * their prefix tensors, and kept for the group's lifetime. A failed load is not kept, so a later
 * call retries it.
 */
import { noLensMessage } from '@shared/domain/models'
import { AppError } from '@shared/ipc/errors'
import type { ResolvedLens } from './bundle/open'
import type { GroupParts } from './loading'
import type { Session } from './ort'
import { readWholeFile } from '../platform/readWholeFile'

export interface LensRuntime {
  resolved: ResolvedLens
  projection: Session
  head: Session
  decoderPrefix: Float32Array
  encoderPrefix: Float32Array
  encoderSuffix?: Float32Array
  lastRowAdd?: Float32Array
}

async function readFloats(file: string): Promise<Float32Array> {
  // A lens's first use reads its tensors, in a new replica's first job (platform/readWholeFile.ts).
  const buf = await readWholeFile(file)
  const out = new Float32Array(buf.byteLength / 4)
  new Uint8Array(out.buffer).set(buf)
  return out
}

export class GroupLenses {
  readonly #parts: GroupParts
  readonly #lenses = new Map<string, Promise<LensRuntime>>()

  constructor(parts: GroupParts) {
    this.#parts = parts
  }

  /** The lens, loading it on first use; `not_found` names the group's lenses. */
  get(id: string): Promise<LensRuntime> {
    const { bundle } = this.#parts
    if (bundle.lenses.length === 0) {
      return Promise.reject(
        new AppError('not_found', noLensMessage(bundle.summary.groupId), { field: 'lensId' })
      )
    }
    const resolved = bundle.lenses.find((l) => l.manifest.id === id)
    if (!resolved) {
      const known = bundle.lenses.map((l) => l.manifest.id).join(', ')
      return Promise.reject(
        new AppError(
          'not_found',
          `no lens "${id}" in group ${bundle.summary.groupId} (lenses: ${known})`,
          { field: 'lensId' }
        )
      )
    }
    let p = this.#lenses.get(id)
    if (!p) {
      p = this.#load(resolved)
      // A failed load is not cached, so a later call can retry.
      p.catch(() => this.#lenses.delete(id))
      this.#lenses.set(id, p)
    }
    return p
  }

  /** Waits for every lens load in flight (before the group's sessions are released). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#lenses.values()])
  }

  async #tensor(file: string): Promise<Float32Array> {
    let t = this.#parts.tensors.get(file)
    if (!t) {
      t = await readFloats(file)
      this.#parts.tensors.set(file, t)
    }
    return t
  }

  async #load(resolved: ResolvedLens): Promise<LensRuntime> {
    const projection = await this.#parts.openModel(resolved.projectionFile)
    let head: Session
    try {
      head = await this.#parts.openModel(resolved.headFile)
    } catch (err) {
      // Retrying the lens later must not leave this projection session behind.
      await projection.release()
      throw err
    }
    this.#parts.sessions.push(projection, head)
    return {
      resolved,
      projection,
      head,
      decoderPrefix: await this.#tensor(resolved.decoderPrefix.file),
      encoderPrefix: await this.#tensor(resolved.encoderPrefix.file),
      encoderSuffix: resolved.encoderSuffix
        ? await this.#tensor(resolved.encoderSuffix.file)
        : undefined,
      lastRowAdd: resolved.lastRowAdd ? await this.#tensor(resolved.lastRowAdd.file) : undefined
    }
  }
}
