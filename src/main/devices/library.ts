/**
 * The model library: every group folder inside the models folder, plus the demo group (always
 * present). Each is validated with the engine's `openBundle`; a broken one stays listed with its
 * error. Bundle folders that resolve outside the models folder (symlinks) are refused, so no path
 * the user cannot see in the folder is ever read through a bundle.
 */
import { watch, type FSWatcher } from 'node:fs'
import { mkdir, readdir, realpath } from 'node:fs/promises'
import { basename, join, relative, isAbsolute } from 'node:path'
import type { LibraryBase, LibraryGroup } from '@shared/domain/models'
import { AppError, toSerializedError, type SerializedError } from '@shared/ipc/errors'
import type { ChatMessage } from '@shared/domain/chat'
import type { BundleSummary } from '../engine'
import { guarded } from '../platform/boundary'
import { createLogger } from '../platform/logger'

const log = createLogger('devices')

export interface LibraryEntry {
  groupId: string
  name: string
  source: 'demo' | 'folder'
  folder: string
  /** Real path of the bundle folder. */
  dir: string
  summary: BundleSummary | null
  errors: SerializedError[]
  /** The group's chat template, read with the summary (or why a conversation cannot be rendered). */
  chat?: { template: ConversationTemplate } | { error: unknown }
}

/** What rendering a conversation needs of a group's chat template. */
export interface ConversationTemplate {
  render(messages: readonly ChatMessage[]): { text: string }
}

export interface LibraryDeps {
  /** The models folder; created when missing. */
  folder: string
  openBundle(dir: string): Promise<BundleSummary>
  /**
   * Reads a group's chat template (once per scan, so that a submitted conversation is rendered
   * without reading a file). Omit and conversations are refused.
   */
  loadChatTemplate?(dir: string): Promise<ConversationTemplate>
  /** Returns the demo group's folder (generated on first use). Omit to list no demo group. */
  ensureDemoBundle?(): Promise<string>
  /** Called after a rescan that changed something. */
  onChange?(): void
  debounceMs?: number
}

function libraryBase(s: BundleSummary): LibraryBase {
  const b = s.baseModel
  return {
    architecture: b.architecture ?? 'prenorm-gpt',
    parameters: b.parameters ?? null,
    checkpointDtype: b.checkpointDtype ?? null,
    graphDtype: b.graphDtype ?? 'float32',
    hiddenSize: b.hiddenSize,
    layers: b.layers,
    vocabSize: b.vocabSize
  }
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path)
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))
}

export class ModelLibrary {
  readonly #deps: LibraryDeps
  #entries: LibraryEntry[] = []
  #folderError: string | undefined
  #scannedAt = 0
  #watcher: FSWatcher | undefined
  #timer: NodeJS.Timeout | undefined
  #scanning: Promise<void> | undefined
  #rescanAgain = false

  constructor(deps: LibraryDeps) {
    this.#deps = deps
  }

  get folder(): string {
    return this.#deps.folder
  }

  get folderError(): string | undefined {
    return this.#folderError
  }

  get scannedAt(): number {
    return this.#scannedAt
  }

  entries(): readonly LibraryEntry[] {
    return this.#entries
  }

  /** The entry of a usable group; `not_found` or `bundle_invalid` (with the bundle's error) else. */
  get(groupId: string): LibraryEntry & { summary: BundleSummary } {
    const e = this.#entries.find((x) => x.groupId === groupId)
    if (!e)
      throw new AppError('not_found', `no model group ${groupId} in the library`, {
        field: 'groupId'
      })
    if (!e.summary) {
      const first = e.errors[0]
      throw new AppError(
        'bundle_invalid',
        `group ${groupId} is broken: ${first?.message ?? 'unknown error'}`,
        {
          field: 'groupId',
          file: first?.file
        }
      )
    }
    return e as LibraryEntry & { summary: BundleSummary }
  }

  /**
   * A conversation as the text the group's chat template makes of it; the template's error (none,
   * unreadable, a conversation it cannot render) names the file and field.
   */
  renderConversation(groupId: string, messages: readonly ChatMessage[]): string {
    const chat = this.get(groupId).chat
    if (!chat) throw new AppError('unavailable', `chat templates are not read for ${groupId}`)
    if ('error' in chat) throw chat.error
    return chat.template.render(messages).text
  }

  /** Re-reads the folder (serialised: a scan requested during a scan runs once more after it). */
  scan(): Promise<void> {
    if (this.#scanning) {
      this.#rescanAgain = true
      return this.#scanning
    }
    this.#scanning = (async () => {
      do {
        this.#rescanAgain = false
        await this.#scanOnce()
      } while (this.#rescanAgain)
    })().finally(() => {
      this.#scanning = undefined
    })
    return this.#scanning
  }

  async #scanOnce(): Promise<void> {
    const before = JSON.stringify(
      this.#entries.map((e) => [e.groupId, e.summary?.contentHash, e.errors])
    )
    const entries: LibraryEntry[] = []
    if (this.#deps.ensureDemoBundle) {
      try {
        const dir = await this.#deps.ensureDemoBundle()
        const summary = await this.#deps.openBundle(dir)
        entries.push({
          groupId: summary.groupId,
          name: summary.name,
          source: 'demo',
          folder: basename(dir),
          dir,
          summary,
          errors: []
        })
      } catch (err) {
        entries.push({
          groupId: 'demo',
          name: 'Demo group',
          source: 'demo',
          folder: 'demo',
          dir: '',
          summary: null,
          errors: [toSerializedError(err)]
        })
      }
    }
    this.#folderError = undefined
    let root: string | undefined
    try {
      await mkdir(this.#deps.folder, { recursive: true })
      root = await realpath(this.#deps.folder)
    } catch (err) {
      this.#folderError = `cannot read the models folder ${this.#deps.folder}: ${(err as Error).message}`
    }
    if (root) {
      let names: string[] = []
      try {
        names = (await readdir(root, { withFileTypes: true }))
          .filter((d) => (d.isDirectory() || d.isSymbolicLink()) && !d.name.startsWith('.'))
          .map((d) => d.name)
          .sort()
      } catch (err) {
        this.#folderError = `cannot list the models folder ${root}: ${(err as Error).message}`
      }
      for (const name of names) entries.push(await this.#readFolder(root, name, entries))
    }
    const loadChat = this.#deps.loadChatTemplate
    if (loadChat) {
      await Promise.all(
        entries
          .filter((e) => e.summary)
          .map(async (e) => {
            e.chat = await loadChat(e.dir).then(
              (template) => ({ template }),
              (error: unknown) => ({ error })
            )
          })
      )
    }
    this.#entries = entries
    this.#scannedAt = Date.now()
    const after = JSON.stringify(entries.map((e) => [e.groupId, e.summary?.contentHash, e.errors]))
    if (after !== before) this.#deps.onChange?.()
  }

  async #readFolder(root: string, name: string, seen: LibraryEntry[]): Promise<LibraryEntry> {
    const broken = (error: SerializedError, dir: string): LibraryEntry => ({
      groupId: name,
      name,
      source: 'folder',
      folder: name,
      dir,
      summary: null,
      errors: [error]
    })
    let dir: string
    try {
      dir = await realpath(join(root, name))
    } catch (err) {
      return broken(
        {
          code: 'bundle_invalid',
          message: `cannot open ${name}: ${(err as Error).message}`,
          file: name
        },
        ''
      )
    }
    if (!inside(root, dir)) {
      return broken(
        {
          code: 'forbidden',
          message: `${name} resolves outside the models folder (${dir}); not read`,
          file: name
        },
        ''
      )
    }
    try {
      const summary = await this.#deps.openBundle(dir)
      if (seen.some((e) => e.groupId === summary.groupId)) {
        return broken(
          {
            code: 'conflict',
            message: `group id ${summary.groupId} is already used by another bundle`,
            file: `${name}/manifest.json`,
            field: 'id'
          },
          dir
        )
      }
      return {
        groupId: summary.groupId,
        name: summary.name,
        source: 'folder',
        folder: name,
        dir,
        summary,
        errors: []
      }
    } catch (err) {
      return broken(toSerializedError(err), dir)
    }
  }

  /** Watches the folder; changes rescan after a quiet period (a bundle copy fires many events). */
  watch(): void {
    if (this.#watcher) return
    try {
      this.#watcher = watch(this.#deps.folder, { recursive: true }, () => this.#debouncedScan())
      this.#watcher.on('error', (err) => {
        this.#folderError = `stopped watching ${this.#deps.folder}: ${err.message}`
        this.#deps.onChange?.()
      })
    } catch (err) {
      this.#folderError = `cannot watch ${this.#deps.folder}: ${(err as Error).message}`
    }
  }

  #debouncedScan(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = setTimeout(
      guarded(log, `rescanning ${this.#deps.folder}`, () => this.scan()),
      this.#deps.debounceMs ?? 300
    )
    this.#timer.unref()
  }

  close(): void {
    this.#watcher?.close()
    this.#watcher = undefined
    if (this.#timer) clearTimeout(this.#timer)
  }

  /** The library as the contract shows it (placement facts are filled in by the manager). */
  describe(
    extra: (e: LibraryEntry) => Pick<LibraryGroup, 'measuredBytes' | 'loadedOn' | 'settings'>
  ): LibraryGroup[] {
    return this.#entries.map((e) => ({
      groupId: e.groupId,
      name: e.name,
      source: e.source,
      folder: e.folder,
      status: e.summary ? 'ok' : 'broken',
      errors: e.errors,
      contentHash: e.summary?.contentHash ?? null,
      weightBytes: e.summary?.weightBytes ?? null,
      estimatedBytes: e.summary?.estimatedBytes ?? null,
      vocabSize: e.summary?.baseModel.vocabSize ?? null,
      maxTokens: e.summary?.baseModel.maxPositions ?? null,
      estimatedBytesByKind: e.summary?.estimatedBytesByKind ?? null,
      base: e.summary ? libraryBase(e.summary) : null,
      baseModel: e.summary?.baseModel.id ?? null,
      lenses:
        e.summary?.lenses.map((l) => ({
          id: l.id,
          name: l.name,
          layer: l.layer,
          tokens: l.tokens
        })) ?? [],
      ...extra(e)
    }))
  }
}
