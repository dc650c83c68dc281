/**
 * Chat as a job: a conversation submitted through the contract is rendered with the group's own
 * chat template (never by the client) and analysed or continued by a real worker on the demo group.
 */
import { cp, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { JobState } from '@shared/domain/jobs'
import { ensureDemoBundle } from '../../src/main/engine'
import type { MemoryClient } from '../../src/main/ipc/memoryTransport'
import {
  finished as jobFinished,
  ok,
  startWorkbench,
  type TestWorkbench
} from '../helpers/workbench'

let bench: TestWorkbench
let client: MemoryClient

const finished = (jobId: string): Promise<JobState> => jobFinished(client, jobId)

beforeAll(async () => {
  bench = await startWorkbench([{ id: 'cpu:0', threads: 1, budgetBytes: 1024 ** 3 }], {
    // A copy of the demo group without a chat template: messages must be refused, naming the file.
    prepareModels: async (modelsDir) => {
      const demo = await ensureDemoBundle()
      await cp(demo, join(modelsDir, 'plain'), { recursive: true })
      const manifestFile = join(modelsDir, 'plain', 'manifest.json')
      const manifest = JSON.parse(await readFile(manifestFile, 'utf8'))
      manifest.group.id = 'demo-plain'
      await writeFile(manifestFile, JSON.stringify(manifest))
      const configFile = join(modelsDir, 'plain', 'tokenizer_config.json')
      const config = JSON.parse(await readFile(configFile, 'utf8'))
      delete config.chat_template
      await writeFile(configFile, JSON.stringify(config))
    }
  })
  client = bench.client('chat-test')
}, 120_000)

afterAll(async () => {
  await bench?.close()
})

describe('chat jobs', () => {
  const messages = [
    { role: 'system' as const, content: 'be quiet' },
    { role: 'user' as const, content: 'the cat sat on the chair' }
  ]

  it('analyses a conversation rendered with the group template', async () => {
    const { jobId } = await ok(
      client.invoke('jobs:submit', {
        kind: 'analyze',
        groupId: 'demo-words',
        messages,
        options: { bestOfK: 2, salience: false, kl: false }
      })
    )
    expect((await finished(jobId)).status).toBe('done')
    const result = await ok(client.invoke('jobs:result', { jobId }))
    const tokens = result.rows.map((r) => r.token)
    // Template markup the client never wrote: turn markers, the role names, the generation prompt.
    expect(tokens[0]).toBe('<bos>')
    expect(tokens.filter((t) => t === '<start_of_turn>')).toHaveLength(3)
    expect(tokens).toContain('system')
    expect(tokens.at(-1)).toBe('model')
    const catRow = result.rows.find((r) => r.token === 'cat')!
    expect(catRow.explanation.split(' ')).toContain('cat')
  })

  it('counts progress in the rows of the last messages when lastNMessages is set', async () => {
    const { jobId } = await ok(
      client.invoke('jobs:submit', {
        kind: 'analyze',
        groupId: 'demo-words',
        messages,
        options: { bestOfK: 2, salience: false, kl: false, lastNMessages: 1 }
      })
    )
    const state = await finished(jobId)
    expect(state.status).toBe('done')
    const result = await ok(client.invoke('jobs:result', { jobId }))
    // The engine starts after the opening markup; progress counts those rows, not every token.
    expect(result.rows[0]!.position).toBeGreaterThan(0)
    expect(state.progress).toEqual({
      rowsDone: result.rows.length,
      rowsTotal: result.rows.length
    })
  })

  it('continues a conversation and stops at the token limit or end of turn', async () => {
    const { jobId } = await ok(
      client.invoke('jobs:submit', {
        kind: 'generate',
        groupId: 'demo-words',
        messages,
        generate: { maxNewTokens: 5, seed: 3, stopAtEndOfTurn: true }
      })
    )
    expect((await finished(jobId)).status).toBe('done')
    const { completions, replies } = await ok(client.invoke('jobs:result', { jobId }))
    expect(completions).toHaveLength(1)
    // The word-level demo tokenizer decodes with spaces between tokens.
    const full = completions[0]!.replace(/ /g, '')
    expect(full).toMatch(/^<bos><start_of_turn>systembequiet<end_of_turn><start_of_turn>user/)
    expect(full).toContain('<start_of_turn>model')
    const reply = completions[0]!.split('<start_of_turn> model')[1]!.trim().split(' ')
    expect(reply.length).toBeGreaterThan(0)
    expect(reply.length).toBeLessThanOrEqual(5)
    // The engine's own reply reaches the caller: the new words, the closing end of turn left out.
    expect(replies).toHaveLength(1)
    expect(replies[0]).toBe(reply.filter((w) => w !== '<end_of_turn>').join(' '))
    expect(replies[0]).not.toContain('<')
  })

  it('refuses text and messages together, naming the field', async () => {
    const r = await client.invoke('jobs:submit', {
      kind: 'analyze',
      groupId: 'demo-words',
      text: 'x',
      messages
    })
    expect(r).toMatchObject({ ok: false, error: { code: 'invalid_input', field: 'messages' } })
  })

  it('refuses messages for a group without a chat template, naming file and field', async () => {
    const r = await client.invoke('jobs:submit', {
      kind: 'analyze',
      groupId: 'demo-plain',
      messages
    })
    expect(r).toMatchObject({
      ok: false,
      error: {
        code: 'invalid_input',
        field: 'chat_template',
        file: expect.stringContaining('tokenizer_config.json')
      }
    })
  })
})
