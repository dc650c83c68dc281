/**
 * One writer per output file: `OUT.lock` names the process that holds it (its pid, its start
 * time and host). A holder that is gone, a zombie (killed, but not reaped: any container whose
 * PID 1 does not reap orphans keeps it, and `kill(pid, 0)` still succeeds), or a pid that now
 * belongs to another process (a different start time) does not hold it any more.
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { AppError } from '@shared/ipc/errors'

export interface LockRecord {
  pid: number
  /** Start time of the process in clock ticks since boot (/proc/PID/stat field 22), if known. */
  startTime: string | null
  host: string | null
}

/** What the operating system says about a pid. */
export interface ProcessProbe {
  /** `kill(pid, 0)`: false when there is no such process. */
  exists: boolean
  /** Linux process state letter (R, S, D, Z, X, …), null where /proc cannot be read. */
  state: string | null
  startTime: string | null
}

/** /proc/PID/stat: `pid (comm) state ppid … starttime …`; comm may hold spaces and parentheses. */
export function parseProcStat(stat: string): { state: string; startTime: string } | null {
  const close = stat.lastIndexOf(')')
  if (close < 0) return null
  const fields = stat
    .slice(close + 1)
    .trim()
    .split(/\s+/)
  // Fields after comm start at field 3 (state); starttime is field 22.
  const state = fields[0]
  const startTime = fields[19]
  return state && startTime ? { state, startTime } : null
}

export function probeProcess(pid: number): ProcessProbe {
  let exists: boolean
  try {
    process.kill(pid, 0)
    exists = true
  } catch (err) {
    exists = (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  if (!exists) return { exists, state: null, startTime: null }
  try {
    const parsed = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))
    return { exists, state: parsed?.state ?? null, startTime: parsed?.startTime ?? null }
  } catch {
    // No /proc (macOS, Windows) or it vanished meanwhile: what kill() said.
    return { exists, state: null, startTime: null }
  }
}

/**
 * Whether the recorded holder still holds the lock. Another host's process cannot be checked from
 * here, so its lock is respected.
 */
export function holderAlive(
  holder: LockRecord,
  probe: ProcessProbe,
  self: { pid: number; host: string }
): boolean {
  if (holder.host !== null && holder.host !== self.host) return true
  if (holder.pid === self.pid) return false
  if (!probe.exists) return false
  if (probe.state === 'Z' || probe.state === 'X') return false
  if (holder.startTime !== null && probe.startTime !== null && holder.startTime !== probe.startTime)
    return false
  return true
}

/** A lock file's content: this format, or a bare pid (the format of earlier versions). */
export function parseLockFile(text: string): LockRecord | null {
  const trimmed = text.trim()
  if (/^\d+$/.test(trimmed)) return { pid: Number(trimmed), startTime: null, host: null }
  try {
    const value = JSON.parse(trimmed) as Partial<LockRecord>
    if (typeof value.pid !== 'number' || !Number.isInteger(value.pid) || value.pid <= 0) return null
    return {
      pid: value.pid,
      startTime: typeof value.startTime === 'string' ? value.startTime : null,
      host: typeof value.host === 'string' ? value.host : null
    }
  } catch {
    return null
  }
}

/** Takes OUT's lock, or throws `conflict` naming the live holder. A stale lock is taken over. */
export function acquireLock(lockFile: string, out: string): void {
  const self = { pid: process.pid, host: hostname() }
  const mine: LockRecord = {
    pid: self.pid,
    startTime: probeProcess(self.pid).startTime,
    host: self.host
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockFile, JSON.stringify(mine) + '\n', { flag: 'wx' })
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      let text = ''
      try {
        text = readFileSync(lockFile, 'utf8')
      } catch {
        continue // Released meanwhile: try again.
      }
      const holder = parseLockFile(text)
      if (holder && holderAlive(holder, probeProcess(holder.pid), self)) {
        const where = holder.host && holder.host !== self.host ? ` on ${holder.host}` : ''
        throw new AppError(
          'conflict',
          `${out} is being written by another run (process ${holder.pid}${where}); if no run is, remove ${lockFile}`,
          { field: 'out', file: out }
        )
      }
      // Gone, a zombie, a reused pid, or a lock file torn before its pid was written.
      try {
        unlinkSync(lockFile)
      } catch {
        // Another run removed it first; the next attempt decides.
      }
    }
  }
  throw new AppError('conflict', `could not lock ${out}`, { field: 'out', file: out })
}
