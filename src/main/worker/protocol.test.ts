import { describe, expect, it } from 'vitest'
import { WorkerToMainSchema, parseWorkerToMain, workerToMainBranch } from './protocol'

const row = {
  position: 0,
  token: 'the',
  tokenId: 6,
  explanation: 'the the',
  explanationStructured: ['the', 'the'],
  mse: 0.1,
  relativeRmse: 0.2,
  klDivergence: null,
  tokenSalience: [0.5, -0.5],
  logitLensTop: null
}
const progress = { batch: 1, totalBatches: 1, rowsDone: 1, rowsTotal: 1, etaSeconds: null }
const rowsEvent = { kind: 'rows', taskId: 't1', rows: [row], progress }

/** Messages a worker may send, well-formed or not: the fast path must judge each as the union. */
const messages: [string, unknown][] = [
  ['hello', { type: 'hello', pid: 12 }],
  ['hello without pid', { type: 'hello' }],
  ['hello with a fractional pid', { type: 'hello', pid: 1.5 }],
  ['answer', { type: 'response', seq: 3, ok: true, value: { found: true } }],
  ['answer without value', { type: 'response', seq: 3, ok: true }],
  ['answer with a string seq', { type: 'response', seq: '3', ok: true, value: 1 }],
  [
    'error answer',
    { type: 'response', seq: 4, ok: false, error: { code: 'internal', message: 'x' } }
  ],
  [
    'error answer with an unknown code',
    { type: 'response', seq: 4, ok: false, error: { code: 'nope', message: 'x' } }
  ],
  ['error answer without error', { type: 'response', seq: 4, ok: false }],
  ['answer without ok', { type: 'response', seq: 4, value: 1 }],
  ['answer with ok a string', { type: 'response', seq: 4, ok: 'true', value: 1 }],
  ['rows event', { type: 'event', event: rowsEvent }],
  [
    'rows event, a row missing its token',
    { type: 'event', event: { ...rowsEvent, rows: [{ ...row, token: undefined }] } }
  ],
  [
    'rows event, a salience a string',
    { type: 'event', event: { ...rowsEvent, rows: [{ ...row, tokenSalience: ['1'] }] } }
  ],
  [
    'rows event without progress',
    { type: 'event', event: { kind: 'rows', taskId: 't1', rows: [] } }
  ],
  ['log event', { type: 'event', event: { kind: 'log', level: 'info', message: 'hi' } }],
  [
    'log event at an unknown level',
    { type: 'event', event: { kind: 'log', level: 'loud', message: 'hi' } }
  ],
  ['event of an unknown kind', { type: 'event', event: { kind: 'gossip' } }],
  ['event without event', { type: 'event' }],
  [
    'stage event',
    { type: 'event', event: { kind: 'stage', groupId: 'g', stage: 'load', fraction: 0.5 } }
  ],
  ['unknown type', { type: 'chat', text: 'hi' }],
  ['no type', { seq: 1, ok: true, value: 1 }],
  ['null', null],
  ['a string', 'hello'],
  ['an array', [{ type: 'hello', pid: 1 }]],
  ['extra fields (stripped)', { type: 'hello', pid: 1, extra: true }]
]

describe('parseWorkerToMain', () => {
  it.each(messages)('%s: the same verdict, data and issues as the whole union', (_, raw) => {
    const fast = parseWorkerToMain(raw)
    const union = WorkerToMainSchema.safeParse(raw)
    expect(fast.success).toBe(union.success)
    if (union.success) expect(fast.data).toEqual(union.data)
    else expect(fast.error?.issues).toEqual(union.error.issues)
  })

  it('parses only the branch its tags name when that branch accepts it', () => {
    expect(workerToMainBranch({ type: 'event', event: rowsEvent })).not.toBe(WorkerToMainSchema)
    expect(workerToMainBranch({ type: 'response', ok: true })).not.toBe(WorkerToMainSchema)
    expect(workerToMainBranch({ type: 'response', ok: false })).not.toBe(WorkerToMainSchema)
    expect(workerToMainBranch({ type: 'hello' })).not.toBe(WorkerToMainSchema)
    // Tags that fit no branch: the whole union, which says why.
    expect(workerToMainBranch({ type: 'response', ok: 1 })).toBe(WorkerToMainSchema)
    expect(workerToMainBranch({ type: 'chat' })).toBe(WorkerToMainSchema)
    expect(workerToMainBranch(null)).toBe(WorkerToMainSchema)
  })

  it('accepts exactly what the union accepts: some of the table is refused, some accepted', () => {
    const verdicts = messages.map(([, raw]) => parseWorkerToMain(raw).success)
    expect(verdicts.filter(Boolean).length).toBeGreaterThan(3)
    expect(verdicts.filter((v) => !v).length).toBeGreaterThan(10)
  })
})
