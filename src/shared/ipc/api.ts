import type {
  EventChannel,
  EventPayload,
  InvokeChannel,
  InvokeInput,
  InvokeOutput
} from './contract'
import type { InvokeResult } from './errors'

/**
 * The object every client sees as `window.api` (Electron preload, headless host bridge script) and
 * tests use through an in-memory transport. Invokes resolve to a result as data, never reject for
 * an application error.
 */
export interface WorkbenchApi {
  invoke<C extends InvokeChannel>(
    channel: C,
    input?: InvokeInput<C>
  ): Promise<InvokeResult<InvokeOutput<C>>>
  /** Subscribe to a pushed event; returns the unsubscribe function. */
  on<E extends EventChannel>(channel: E, listener: (payload: EventPayload<E>) => void): () => void
  /**
   * Electron only: the path on disk of a file or folder dropped on the page (a DOM `File`), or
   * null. A browser never learns paths, so on the headless host the user types the path instead.
   */
  pathForFile?(file: unknown): string | null
}
