import type { InterventionRequestInput, InterventionRow } from '@shared/domain/research'

/** What the intervention editor holds, as typed. */
export interface InterventionDraft {
  /** One intervention string per line. */
  strings: string
  /** The selected row's position, then any more, comma- or space-separated. */
  positions: string
  /** Empty: each intervened position predicts its own next token. */
  nextPosition: string
  topK: string
  maxNewTokens: string
}

export type DraftResult =
  | { ok: true; request: InterventionRequestInput }
  | { ok: false; field: keyof InterventionDraft; message: string }

/** The editor's starting values for a picked row: its own explanation as the one string. */
export function draftForRow(row: { position: number; explanation: string }): InterventionDraft {
  return {
    strings: row.explanation,
    positions: String(row.position),
    nextPosition: '',
    topK: '10',
    maxNewTokens: '20'
  }
}

function wholeNumber(text: string): number | null {
  return /^\d+$/.test(text.trim()) ? Number(text.trim()) : null
}

/**
 * The request a draft describes, or the first field that is wrong and why. Positions must be ones
 * the result has rows for; the prediction position must not come before any intervened position.
 */
export function requestFromDraft(
  draft: InterventionDraft,
  rowPositions: readonly number[]
): DraftResult {
  const strings = draft.strings
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
  if (strings.length === 0)
    return { ok: false, field: 'strings', message: 'Type at least one intervention string.' }
  const parts = draft.positions.split(/[\s,]+/).filter((p) => p.length > 0)
  const positions: number[] = []
  const known = new Set(rowPositions)
  for (const part of parts) {
    const p = wholeNumber(part)
    if (p === null)
      return { ok: false, field: 'positions', message: `“${part}” is not a token position.` }
    if (!known.has(p))
      return { ok: false, field: 'positions', message: `This result has no row at position ${p}.` }
    if (!positions.includes(p)) positions.push(p)
  }
  if (positions.length === 0)
    return { ok: false, field: 'positions', message: 'Give at least one position.' }
  let nextPosition: number | undefined
  if (draft.nextPosition.trim() !== '') {
    const n = wholeNumber(draft.nextPosition)
    if (n === null || !known.has(n))
      return {
        ok: false,
        field: 'nextPosition',
        message: 'The prediction position must be a position of this result.'
      }
    if (n < Math.max(...positions))
      return {
        ok: false,
        field: 'nextPosition',
        message: `The prediction position must be at or after every intervened position (${Math.max(...positions)}).`
      }
    nextPosition = n
  }
  const topK = wholeNumber(draft.topK)
  if (topK === null || topK < 1 || topK > 100)
    return { ok: false, field: 'topK', message: 'Top-k is a whole number from 1 to 100.' }
  const maxNewTokens = wholeNumber(draft.maxNewTokens)
  if (maxNewTokens === null || maxNewTokens > 512)
    return {
      ok: false,
      field: 'maxNewTokens',
      message: 'The continuation length is a whole number from 0 to 512.'
    }
  return {
    ok: true,
    request: {
      positions,
      strings,
      ...(nextPosition === undefined ? {} : { nextPosition }),
      topK,
      maxNewTokens
    }
  }
}

/** How an intervention string was fitted to the lens's T tokens, in words; null when it fit. */
export function fitNote(row: InterventionRow): string | null {
  const t = row.interventionIds.length
  if (row.truncatedTokens > 0)
    return `Truncated to T=${t} tokens: ${row.truncatedTokens} ${row.truncatedTokens === 1 ? 'token was' : 'tokens were'} cut from the start.`
  return null
}

/**
 * The layers a sweep's "layers" field names: empty for every layer, else numbers and ranges
 * (`0-2, 5`), each inside the model's `depth` layers when that is known. Sorted, without repeats.
 */
export function layersFromText(
  text: string,
  depth: number | null
): { ok: true; layers: number[] | undefined } | { ok: false; message: string } {
  const parts = text.split(/[\s,]+/).filter((p) => p.length > 0)
  if (parts.length === 0) return { ok: true, layers: undefined }
  const layers = new Set<number>()
  const range = depth === null ? '' : ` (the model has layers 0 to ${depth - 1})`
  for (const part of parts) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part)
    if (!m) return { ok: false, message: `“${part}” is not a layer or a range like 0-3.` }
    const from = Number(m[1])
    const to = m[2] === undefined ? from : Number(m[2])
    if (to < from) return { ok: false, message: `The range ${part} runs backwards.` }
    if (depth !== null && to >= depth)
      return { ok: false, message: `Layer ${to} is outside the model${range}.` }
    if (to - from >= 1024) return { ok: false, message: `The range ${part} is too long.` }
    for (let l = from; l <= to; l++) layers.add(l)
  }
  return { ok: true, layers: [...layers].sort((a, b) => a - b) }
}
