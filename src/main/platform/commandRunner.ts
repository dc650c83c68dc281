/**
 * Runs an external command (nvidia-smi and friends) and reports every outcome as data: a missing
 * binary, a timeout or a failing exit never throws, so each caller decides what it means.
 */
import { execFile } from 'node:child_process'

/** Outcome of running an external command; never throws, so callers decide what a failure means. */
export interface CommandOutcome {
  stdout: string
  stderr: string
  /** Process exit code; null when the process could not start or was killed. */
  exitCode: number | null
  /** Set when the command could not run at all (e.g. `ENOENT` for a missing binary). */
  spawnError?: string
}

export type CommandRunner = (
  command: string,
  args: readonly string[],
  options: { timeoutMs: number }
) => Promise<CommandOutcome>

export const runCommand: CommandRunner = (command, args, { timeoutMs }) =>
  new Promise((resolvePromise) => {
    execFile(
      command,
      [...args],
      { timeout: timeoutMs, windowsHide: true, maxBuffer: 1024 * 1024 },
      (error, stdout, stderr) => {
        if (!error) {
          resolvePromise({ stdout, stderr, exitCode: 0 })
          return
        }
        const code = (error as NodeJS.ErrnoException).code
        if (typeof code === 'string') {
          resolvePromise({ stdout, stderr, exitCode: null, spawnError: code })
          return
        }
        resolvePromise({
          stdout,
          stderr,
          exitCode: typeof error.code === 'number' ? error.code : null,
          spawnError: error.killed ? 'timeout' : undefined
        })
      }
    )
  })
