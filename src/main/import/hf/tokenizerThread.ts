/**
 * prepareTokenizer (tokenizerFiles.ts) on a worker thread, so that the import streams the weights
 * meanwhile: reading and checking Gemma-3's 33 MB `tokenizer.json` costs about 2 s of CPU parsed,
 * about a third of that walked (tokenizerScan.ts), which sat before the first weight was written
 * (docs/import.md "Safety and memory"); the weights do not need the tokenizer.
 *
 * The thread hands back what the import writes and reads (the file's bytes, transferred, not
 * copied), not the parsed file: a structured clone of the parsed 33 MB costs as much as parsing it.
 * For the bundle validation it hands back `validationView`, the parts of the parsed file the
 * validation's tokenizer check reads (see `tokenizerValidationView`).
 *
 * The thread's code is this module's `serveTokenizerThread`, started from the built entry
 * `tokenizerThread.js` beside the running bundle (electron.vite.config.ts), or from this source
 * through tsx (tests, bench, `npm run` scripts). Every failure surfaces as an error naming the
 * folder's tokenizer file: a CheckpointError from prepareTokenizer as itself, a thread that throws
 * or exits as an Error; an abort stops the thread.
 */
import { existsSync, promises as fs } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { Worker, parentPort, workerData, type MessagePort } from 'node:worker_threads'
import { CheckpointError, type CheckpointErrorDetails, type CheckpointProblem } from '../errors'
import { isPlainObject } from '../files'
import type { HfFolder } from './folder'
import { prepareTokenizer, type PreparedTokenizer } from './tokenizerFiles'

/** What prepareTokenizer reads of the folder (all of it structured-cloneable). */
export type TokenizerFolder = Pick<HfFolder, 'dir' | 'config' | 'files' | 'fileNames'>

/** prepareTokenizer's result as the thread hands it back. */
export interface ThreadPreparedTokenizer extends Omit<PreparedTokenizer, 'tokenizerParsed'> {
  /**
   * `tokenizer.json` for the bundle validation: reduced to what it reads of it (from the thread),
   * or the parsed file itself (in-process).
   */
  validationView: Record<string, unknown>
}

/**
 * Below this size `tokenizer.json` is prepared in-process: starting the thread (a new isolate that
 * loads the tokenizer library) costs more than parsing a file this small (GPT-2's 1.4 MB takes
 * about 10 ms). Qwen3's 11 MB and Gemma-3's 33 MB go to the thread.
 */
export const TOKENIZER_THREAD_MIN_BYTES = 4 * 1024 * 1024

/**
 * prepareTokenizer beside the weights: on a worker thread (prepareTokenizerInThread) for a large
 * `tokenizer.json`, in-process for a small one. Returns at once; the promise settles with the
 * result or the error.
 */
export async function prepareTokenizerBeside(
  folder: TokenizerFolder,
  vocabSize: number,
  options: TokenizerThreadOptions = {}
): Promise<ThreadPreparedTokenizer> {
  const file = folder.files.tokenizer
  const size = file
    ? await fs.stat(file).then(
        (st) => st.size,
        () => 0
      )
    : 0
  if (size >= TOKENIZER_THREAD_MIN_BYTES || options.entry) {
    return prepareTokenizerInThread(folder, vocabSize, options)
  }
  const { tokenizerParsed, ...rest } = await prepareTokenizer(folder, vocabSize)
  return { ...rest, validationView: tokenizerParsed }
}

interface TokenizerRequest {
  folder: TokenizerFolder
  vocabSize: number
}

type TokenizerReply =
  | { ok: true; prepared: ThreadPreparedTokenizer }
  | {
      ok: false
      error: {
        name: string
        message: string
        problem?: CheckpointProblem
      } & Partial<CheckpointErrorDetails>
    }

/**
 * The parts of a parsed `tokenizer.json` that the bundle validation's tokenizer check reads (the
 * engine's bundle/open.ts: the model's largest vocabulary id, each added token's id and whether it
 * is special), as an object that check passes or fails exactly as it does the whole file.
 */
export function tokenizerValidationView(json: Record<string, unknown>): Record<string, unknown> {
  const model = json.model
  let viewModel: unknown = model
  if (isPlainObject(model)) {
    const vocab = model.vocab
    let maxId = -1
    if (Array.isArray(vocab)) maxId = vocab.length - 1
    else if (isPlainObject(vocab)) {
      for (const token in vocab) {
        const id = vocab[token]
        if (typeof id === 'number' && id > maxId) maxId = id
      }
    }
    viewModel = { vocab: maxId >= 0 ? { max: maxId } : {} }
  }
  const view: Record<string, unknown> = { model: viewModel }
  if (Array.isArray(json.added_tokens)) {
    view.added_tokens = json.added_tokens.map((t: unknown) =>
      isPlainObject(t) ? { id: t.id, special: t.special } : t
    )
  }
  return view
}

/** The thread's side: answers one request, then the thread ends. */
function serveTokenizerThread(port: MessagePort): void {
  port.once('message', (request: TokenizerRequest) => {
    void (async () => {
      let reply: TokenizerReply
      const transfer: ArrayBuffer[] = []
      try {
        const { tokenizerParsed, tokenizerJson, ...rest } = await prepareTokenizer(
          request.folder,
          request.vocabSize
        )
        // Handed over, not copied: a view of a whole buffer of its own is transferred as is.
        const own =
          tokenizerJson.byteOffset === 0 &&
          tokenizerJson.byteLength === tokenizerJson.buffer.byteLength &&
          tokenizerJson.buffer instanceof ArrayBuffer
            ? tokenizerJson
            : new Uint8Array(tokenizerJson)
        transfer.push(own.buffer as ArrayBuffer)
        reply = {
          ok: true,
          prepared: {
            ...rest,
            tokenizerJson: own,
            validationView: tokenizerValidationView(tokenizerParsed)
          }
        }
      } catch (err) {
        reply = {
          ok: false,
          error:
            err instanceof CheckpointError
              ? {
                  name: err.name,
                  message: err.message,
                  problem: err.problem,
                  file: err.file,
                  field: err.field,
                  tensor: err.tensor
                }
              : { name: 'Error', message: err instanceof Error ? err.message : String(err) }
        }
      }
      port.postMessage(reply, transfer)
    })()
  })
}

/** Marks the threads this module starts (so that it never answers another thread's parent). */
const THREAD_MARK = 'talkative-tokenizer-thread'

if (parentPort && (workerData as { mark?: unknown } | null)?.mark === THREAD_MARK) {
  serveTokenizerThread(parentPort)
}

/** How to start the thread: its code, and whether it is a file or a bootstrap to evaluate. */
interface ThreadEntry {
  code: string
  eval: boolean
  env?: NodeJS.ProcessEnv
}

function here(): string {
  // The build is CommonJS (__dirname); vitest and tsx also provide it for TypeScript sources.
  return typeof __dirname === 'string' ? __dirname : process.cwd()
}

function findUp(start: string, file: string): string | undefined {
  let dir = start
  for (let i = 0; i < 8; i++) {
    if (existsSync(path.join(dir, file))) return dir
    const up = path.dirname(dir)
    if (up === dir) break
    dir = up
  }
  return undefined
}

/** The built entry beside the running bundle, else this source file through tsx. */
export function resolveTokenizerThread(from: string = here()): ThreadEntry {
  // Shared code lands in out/main/chunks/, the entries in out/main/.
  const built = [
    path.join(from, 'tokenizerThread.js'),
    path.join(from, '..', 'tokenizerThread.js')
  ].find((p) => existsSync(p))
  if (built) return { code: built, eval: false }
  const source = path.join(from, 'tokenizerThread.ts')
  const root = findUp(from, 'tsconfig.node.json')
  if (!existsSync(source) || !root) {
    throw new Error(`cannot find the tokenizer thread (no tokenizerThread.js or .ts near ${from})`)
  }
  // tsx's require hook in the thread, with the repository's path aliases (`@shared`).
  const tsx = createRequire(path.join(root, 'package.json')).resolve('tsx/cjs/api')
  return {
    code: `require(${JSON.stringify(tsx)}).register(); require(${JSON.stringify(source)})`,
    eval: true,
    env: { ...process.env, TSX_TSCONFIG_PATH: path.join(root, 'tsconfig.node.json') }
  }
}

export interface TokenizerThreadOptions {
  signal?: AbortSignal
  /** The thread to start (default resolveTokenizerThread(); tests make it fail). */
  entry?: ThreadEntry
}

/**
 * Starts prepareTokenizer for `folder` on a worker thread and returns at once. The promise settles
 * with its result or its error; the thread ends either way (and on `signal`).
 */
export function prepareTokenizerInThread(
  folder: TokenizerFolder,
  vocabSize: number,
  options: TokenizerThreadOptions = {}
): Promise<ThreadPreparedTokenizer> {
  const file = folder.fileNames.tokenizer ?? 'tokenizer.json'
  const where = path.join(folder.dir, file)
  return new Promise<ThreadPreparedTokenizer>((resolve, reject) => {
    const { signal } = options
    let settled = false
    let worker: Worker | undefined
    const finish = (outcome: () => void): void => {
      if (settled) return
      settled = true
      signal?.removeEventListener('abort', onAbort)
      void worker?.terminate()
      outcome()
    }
    const fail = (err: Error): void => finish(() => reject(err))
    function onAbort(): void {
      fail(new CheckpointError('cancelled', `${file}: reading cancelled`, { file }))
    }
    if (signal?.aborted) return onAbort()
    signal?.addEventListener('abort', onAbort)
    try {
      const entry = options.entry ?? resolveTokenizerThread()
      worker = new Worker(entry.code, {
        eval: entry.eval,
        workerData: { mark: THREAD_MARK },
        ...(entry.env ? { env: entry.env } : {})
      })
    } catch (err) {
      return fail(
        new Error(`${where}: cannot start the tokenizer thread: ${(err as Error).message}`)
      )
    }
    worker.on('message', (reply: TokenizerReply) => {
      if (reply.ok) return finish(() => resolve(reply.prepared))
      const e = reply.error
      if (e.name === 'CheckpointError' && e.problem && e.file !== undefined) {
        const { problem, message, ...details } = e
        const err = new CheckpointError(problem, message, {
          file: details.file!,
          ...(details.field !== undefined ? { field: details.field } : {}),
          ...(details.tensor !== undefined ? { tensor: details.tensor } : {})
        })
        return fail(err)
      }
      fail(new Error(`${where}: preparing the tokenizer failed: ${e.message}`))
    })
    worker.on('error', (err: Error) =>
      fail(new Error(`${where}: the tokenizer thread failed: ${err.message}`))
    )
    worker.on('messageerror', (err: Error) =>
      fail(new Error(`${where}: the tokenizer thread sent an unreadable reply: ${err.message}`))
    )
    worker.on('exit', (code) =>
      fail(
        new Error(`${where}: the tokenizer thread stopped without an answer (exit code ${code})`)
      )
    )
    const request: TokenizerRequest = {
      folder: {
        dir: folder.dir,
        config: folder.config,
        files: folder.files,
        fileNames: folder.fileNames
      },
      vocabSize
    }
    worker.postMessage(request)
  })
}
