import { describe, expect, it } from 'vitest'
import { AnalyzeOptionsSchema, type AnalysisMetadata } from '@shared/domain/analysis'
import { SESSION_FORMAT, type Session } from '@shared/domain/sessions'
import { PUBLIC_METADATA_KEYS, PUBLIC_ROW_KEYS } from '@shared/public/lensFrame'
import { SessionExportSchema } from '@shared/public/sessionExport'
import { parseCsv } from '../engine'
import { InterventionRequestSchema, SweepRequestSchema } from '@shared/domain/research'
import { exportSession, parseSessionFile } from './exportFormats'

const NOW = 1_700_000_000_000

const METADATA: AnalysisMetadata = {
  groupId: 'demo-words',
  lensId: 'words-l1',
  layer: 1,
  bundleHash: 'abc123',
  engineVersion: '0.1.1',
  executionProvider: 'cpu',
  options: {
    ...AnalyzeOptionsSchema.parse({ bestOfK: 8 }),
    rowsPerBatch: 256,
    positionsPerBatch: 32
  },
  seed: 42,
  numTokens: 4,
  analysedPositions: 1,
  timings: { tokenizeMs: 0.5, totalMs: 12 },
  status: 'completed',
  lensName: 'Words at layer 1',
  baseModel: 'Demo base',
  origModel: 'Demo base',
  donorModel: null,
  checkpointPath: '/cache/bundles/demo-words-v4',
  device: 'cpu:0'
}

function session(id: string, extra: Partial<Session> = {}): Session {
  return {
    format: SESSION_FORMAT,
    version: 1,
    id,
    name: 'The cat, "quoted" · words-l1',
    createdAt: 1,
    updatedAt: 2,
    appVersion: '0.1.0',
    kind: 'analyze',
    input: { mode: 'text', text: 'The captain sat.' },
    groupId: 'demo-words',
    lensId: 'words-l1',
    bundleHash: 'abc123',
    options: AnalyzeOptionsSchema.parse({ bestOfK: 8 }),
    jobId: 'job-1',
    status: 'completed',
    error: null,
    metadata: METADATA,
    rows: [
      {
        position: 2,
        token: '<unk>',
        tokenId: 3,
        sourceText: 'captain',
        explanation: 'cat, "feline"\nnew',
        explanationStructured: ['cat,', '"feline"', '\nnew'],
        mse: 0.001,
        relativeRmse: 0.1,
        klDivergence: 0.25,
        tokenSalience: [0.2, -0.1, 0],
        logitLensTop: 'cat dog'
      },
      {
        position: 3,
        token: 'sat',
        tokenId: 40,
        explanation: 'sat sat',
        explanationStructured: ['sat', ' sat'],
        mse: 0.002,
        relativeRmse: 0.2,
        klDivergence: null,
        tokenSalience: [],
        logitLensTop: null
      }
    ],
    completions: [],
    interventions: [],
    ...extra
  }
}

const mark = (fileName: string): Session['importedFrom'] => ({
  fileName,
  format: 'talkative',
  importedAt: NOW
})

describe('session exports', () => {
  it('JSON and JSONL are {metadata, data, session} in the public names, and read back exactly', () => {
    const s = session('s-round')
    for (const format of ['json', 'jsonl'] as const) {
      const file = exportSession(s, format)
      const value = JSON.parse(file.content) as Record<string, unknown>
      expect(Object.keys(value)).toEqual(['metadata', 'data', 'session'])
      const parsed = SessionExportSchema.parse(value)
      expect(Object.keys(parsed.metadata)).toEqual(PUBLIC_METADATA_KEYS)
      expect(parsed.data.map((r) => Object.keys(r))).toEqual([PUBLIC_ROW_KEYS, PUBLIC_ROW_KEYS])
      expect(parsed.data[0]).toMatchObject({ token: '<unk>', source_text: 'captain', token_id: 3 })
      expect(parsed.metadata).toMatchObject({
        model_id: 'demo-words/words-l1',
        encoder_decoder_model: 'Words at layer 1',
        best_of_k: 8,
        batch_size: 32,
        rows_per_batch: 256,
        device: 'cpu:0',
        timings: { tokenize_ms: 0.5, total_ms: 12 }
      })
      expect(parseSessionFile(file.fileName, file.content, NOW)).toEqual([
        { ...s, importedFrom: mark(file.fileName) }
      ])
    }
    // The predecessor's JSONL holds one analysis per line, and so does ours.
    expect(exportSession(s, 'jsonl').content.trim().split('\n')).toHaveLength(1)
  })

  it('intervention and sweep sessions read back with their requests, results and row fields', () => {
    const prediction = { token: 'cat', tokenId: 7, probability: 0.5 }
    const intervene = session('s-intervene', {
      kind: 'intervene',
      intervention: InterventionRequestSchema.parse({ positions: [2], strings: ['dog'] }),
      interventions: [
        {
          index: 0,
          interventionPosition: 2,
          intervenedToken: 'cat',
          intervenedTokenId: 7,
          nextTokenPosition: 2,
          predictionContextToken: 'cat',
          interventionText: 'dog',
          interventionString: '<bos> dog',
          interventionIds: [0, 2, 9],
          truncatedTokens: 0,
          paddedTokens: 1,
          explanationOriginal: 'cat cat',
          explanationStructured: ['cat', ' cat'],
          klDivergence: 0.1,
          klDivOrigDecoded: 0.01,
          mse: 0.2,
          mseOrigDecoded: 0.02,
          topPredictionsOriginal: [prediction],
          topPredictionsIntervention: [prediction],
          topPredictionsOriginalDecoded: [prediction],
          continuationOriginal: 'the',
          continuationIntervention: 'a',
          continuationOriginalDecoded: 'the'
        }
      ]
    })
    const sweepRows = session('x').rows.map((r, i) => ({
      ...r,
      layer: i,
      lensId: 'words-l1',
      lensLayer: 1,
      trainedAtLayer: i === 1,
      mseBefore: 0.5,
      rollouts: 12
    }))
    const sweep = session('s-sweep', {
      kind: 'sweep',
      sweep: SweepRequestSchema.parse({ position: 2 }),
      rows: sweepRows
    })
    for (const s of [intervene, sweep]) {
      const file = exportSession(s, 'json')
      expect(parseSessionFile(file.fileName, file.content, NOW)).toEqual([
        { ...s, importedFrom: mark(file.fileName) }
      ])
    }
    const wire = JSON.parse(exportSession(intervene, 'json').content)
    expect(wire.session.interventions[0]).toMatchObject({
      kl_div_orig_decoded: 0.01,
      top_predictions_original: [{ token_id: 7 }]
    })
    expect(JSON.parse(exportSession(sweep, 'json').content).data[1]).toMatchObject({
      layer: 1,
      trained_at_layer: true,
      mse_before: 0.5
    })
  })

  it('a run that failed before its first row (no metadata) exports and reads back', () => {
    const s = session('s-empty', {
      status: 'failed',
      rows: [],
      metadata: null,
      error: { code: 'invalid_input', message: 'the text has no tokens', field: 'text' }
    })
    for (const format of ['json', 'jsonl'] as const) {
      const file = exportSession(s, format)
      const parsed = SessionExportSchema.parse(JSON.parse(file.content))
      expect(Object.keys(parsed.metadata)).toEqual(PUBLIC_METADATA_KEYS)
      expect(parsed.metadata).toMatchObject({ layer: null, engine_version: null, best_of_k: 8 })
      expect(parseSessionFile(file.fileName, file.content, NOW)).toEqual([
        { ...s, importedFrom: mark(file.fileName) }
      ])
    }
  })

  it('CSV: the public row columns, quoted so fields read back unchanged, lists as JSON', () => {
    const file = exportSession(session('s-csv'), 'csv')
    expect(file.fileName).toMatch(/^the-cat-quoted-words-l1-s-csv\.csv$/)
    const { rows } = parseCsv(Buffer.from(file.content))
    expect(rows[0]!.fields).toEqual(PUBLIC_ROW_KEYS)
    expect(rows[1]!.fields).toEqual([
      '2',
      '<unk>',
      '3',
      'cat, "feline"\nnew',
      '["cat,","\\"feline\\"","\\nnew"]',
      '0.001',
      '0.1',
      '0.25',
      '[0.2,-0.1,0]',
      'cat dog',
      'captain'
    ])
    // KL off, logit lens off, no unknown word: empty cells.
    expect(rows[2]!.fields.slice(7)).toEqual(['', '[]', '', ''])
  })

  it('CSV keeps one explanation token per salience value when tokens carry their own spaces', () => {
    const spaced = session('s-spaced')
    spaced.rows[0] = {
      ...spaced.rows[0]!,
      explanationStructured: [' the', '  cat', ' ', 'é'],
      tokenSalience: [0.1, 0.2, 0.3, 0.4]
    }
    const { rows } = parseCsv(Buffer.from(exportSession(spaced, 'csv').content))
    const col = (name: string): string =>
      rows[1]!.fields[PUBLIC_ROW_KEYS.indexOf(name as never)] ?? ''
    expect(JSON.parse(col('explanation_structured'))).toEqual([' the', '  cat', ' ', 'é'])
    expect(JSON.parse(col('token_salience'))).toEqual([0.1, 0.2, 0.3, 0.4])
  })
})

describe('importing files of earlier versions', () => {
  it('a session file (the JSON export of earlier versions) reads as it was', () => {
    const s = session('s-old', { metadata: null })
    expect(parseSessionFile('old.json', JSON.stringify(s, null, 2), NOW)).toEqual([
      { ...s, importedFrom: mark('old.json') }
    ])
  })

  it('the JSONL export of earlier versions (a session line, then row lines) reads as it was', () => {
    const s = session('s-old-jsonl')
    const { rows, ...header } = s
    const lines = [
      JSON.stringify({ type: 'session', ...header }),
      ...rows.map((r) => JSON.stringify({ type: 'row', ...r }))
    ]
    expect(parseSessionFile('old.jsonl', lines.join('\n') + '\n', NOW)).toEqual([
      { ...s, importedFrom: mark('old.jsonl') }
    ])
    // Stopped before its first row: the session line alone.
    expect(
      parseSessionFile('empty.jsonl', JSON.stringify({ type: 'session', ...header, rows: [] }), NOW)
    ).toHaveLength(1)
  })
})

describe("importing the predecessor's exports", () => {
  // LensDataFrame.to_json: {metadata, data}, `explanation` dropped, KL −1.0 when it was off.
  const predecessorRow = (position: number, token: string, kl: number): object => ({
    position,
    token,
    kl_divergence: kl,
    mse: 0.01 * (position + 1),
    relative_rmse: 0.3,
    explanation_structured: [' The', ' cat', '[' + token + ']'],
    token_salience: [0.1, 0.2]
  })
  const frame = {
    metadata: {
      checkpoint_path: '/ckpt/gemma3_CHAT_27b.pt',
      model_name: 'google/gemma-3-27b-pt',
      orig_model_name: 'google/gemma-3-27b-it'
    },
    data: [predecessorRow(0, '<bos>', -1), predecessorRow(1, ' cat', -1)]
  }

  it('{metadata, data} JSON becomes one session, marked with its metadata kept as it was', () => {
    const [s, ...rest] = parseSessionFile('lens.json', JSON.stringify(frame, null, 2), NOW)
    expect(rest).toEqual([])
    expect(s!.rows).toHaveLength(2)
    expect(s!.rows[1]).toEqual({
      position: 1,
      token: ' cat',
      tokenId: null,
      explanation: ' The cat[ cat]',
      explanationStructured: [' The', ' cat', '[ cat]'],
      mse: 0.02,
      relativeRmse: 0.3,
      klDivergence: null,
      tokenSalience: [0.1, 0.2],
      logitLensTop: null
    })
    expect(s!.options).toMatchObject({ salience: true, kl: false, logitLens: false })
    expect(s!.groupId).toBe('google/gemma-3-27b-pt')
    expect(s!.metadata).toBeNull()
    expect(s!.importedFrom).toEqual({
      fileName: 'lens.json',
      format: 'predecessor',
      importedAt: NOW,
      metadata: frame.metadata
    })
  })

  it('its JSONL (one {metadata, data} per line) becomes one session per line', () => {
    const web = {
      metadata: { model_id: 'gemma3-27b-L45', layer: 45, best_of_k: 16, temperature: 0.8 },
      data: [{ ...predecessorRow(0, '<bos>', 0.5), explanation: ' The cat[<bos>]' }]
    }
    const sessions = parseSessionFile(
      'lens.jsonl',
      `${JSON.stringify(frame)}\n${JSON.stringify(web)}\n`,
      NOW
    )
    expect(sessions).toHaveLength(2)
    expect(sessions[1]!.lensId).toBe('gemma3-27b-L45')
    expect(sessions[1]!.options).toMatchObject({ bestOfK: 16, temperature: 0.8, kl: true })
    expect(sessions[1]!.rows[0]!.klDivergence).toBe(0.5)
    expect(sessions[1]!.name).toBe('lens.jsonl line 2')
  })

  it('a bare list of rows reads too', () => {
    expect(parseSessionFile('rows.json', JSON.stringify(frame.data), NOW)[0]!.rows).toHaveLength(2)
  })
})

describe('import errors name the file, the line and the field', () => {
  it.each([
    ['a.json', '{"format":"talkative-session"}', /a\.json is not a session file: version/],
    ['b.json', 'nope', /b\.json is not JSON/],
    ['c.jsonl', '{"type":"session"}\n{"type":"other"}', /c\.jsonl line 2: expected a row line/],
    ['d.json', '  ', /d\.json is empty/],
    [
      'e.json',
      '{"metadata":{},"data":[{"position":0}]}',
      /e\.json is not an analysis.*data\.0\.token/
    ],
    ['f.jsonl', '{"data":[]}\n{"x":1}', /f\.jsonl line 2 is neither a session nor an analysis/],
    ['g.json', '{"metadata":{},"data":[],"session":{}}', /g\.json is not a session export/]
  ])('%s', (fileName, content, message) => {
    expect(() => parseSessionFile(fileName, content, NOW)).toThrow(message)
  })
})
