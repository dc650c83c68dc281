/**
 * Every test file saves placements into its own temporary file: a pin or a preload saved by one
 * file must never be restored by another (nor reach the user's own placements file).
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

process.env.TALKATIVE_PLACEMENTS_FILE = join(
  mkdtempSync(join(tmpdir(), 'talkative-placements-')),
  'placements.json'
)
