import { describe, expect, it } from 'vitest'
import { CommanderError, type Command } from 'commander'
import { AppError } from '@shared/ipc/errors'
import { EXIT, exitCodeFor, floatArg, intArg, parseTarget, reportError } from './generate'
import { generateCommand } from './generate'
import { chatCommand } from './chat'
import { runCommand } from './run'

/** Parses a command line in-process; returns commander's error message (nothing runs). */
async function parseError(cmd: Command, args: string[]): Promise<string> {
  let written = ''
  cmd.exitOverride().configureOutput({ writeErr: (s) => (written += s), writeOut: () => undefined })
  cmd.action(() => undefined)
  try {
    await cmd.parseAsync(args, { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) return written || err.message
    throw err
  }
  throw new Error(`parsed without error: ${args.join(' ')}`)
}

function appError(fn: () => unknown): AppError {
  try {
    fn()
  } catch (err) {
    if (err instanceof AppError) return err
    throw err
  }
  throw new Error('expected an AppError')
}

describe('argument parsing names the flag and the problem', () => {
  const cases: [() => Command, string[], RegExp][] = [
    [
      generateCommand,
      ['--text', 'x', '--top-p', '1.5'],
      /--top-p must be above 0 and at most 1, got 1\.5/
    ],
    [generateCommand, ['--text', 'x', '--top-p', '0'], /--top-p must be above 0/],
    [generateCommand, ['--text', 'x', '--seed', 'abc'], /--seed must be an integer, got "abc"/],
    [
      generateCommand,
      ['--text', 'x', '--max-new-tokens', '0'],
      /--max-new-tokens must be between 1 and 4096/
    ],
    [generateCommand, ['--text', 'x', '-n', '2.5'], /--n must be an integer/],
    [generateCommand, ['--text', 'x', '--temperature', 'hot'], /--temperature must be a number/],
    [
      generateCommand,
      ['--text', 'x', '--ep', 'tpu'],
      /--ep.*Allowed choices are cpu, cuda, webgpu/
    ],
    [generateCommand, ['--text', 'x', '--bogus'], /unknown option '--bogus'/],
    [chatCommand, ['--message'], /--message <text>' argument missing/],
    [runCommand, ['--out', 'o.jsonl'], /required option '--dataset <file>' not specified/],
    [
      runCommand,
      ['--dataset', 'a', '--out', 'b', '--format', 'xml'],
      /--format.*Allowed choices are jsonl, json, csv/
    ],
    [
      runCommand,
      ['--dataset', 'a', '--out', 'b', '--on-bad-line', 'ignore'],
      /--on-bad-line.*skip, fail/
    ],
    [
      runCommand,
      ['--dataset', 'a', '--out', 'b', '--best-of-k', '0'],
      /--best-of-k must be between 1 and 512/
    ],
    [
      runCommand,
      ['--dataset', 'a', '--out', 'b', '--threads', '-1'],
      /--threads must be between 0 and 1024/
    ]
  ]
  for (const [make, args, message] of cases) {
    it(`${make().name()} ${args.join(' ')}`, async () => {
      expect(await parseError(make(), args)).toMatch(message)
    })
  }

  it('reads numbers strictly', () => {
    expect(intArg('--n', 1, 9)('7')).toBe(7)
    expect(() => intArg('--n', 1, 9)('7x')).toThrow(/--n must be an integer/)
    expect(() => intArg('--n', 1, 9)('1e1')).toThrow(/--n must be an integer/)
    expect(floatArg('--t', 0, 5)('0.25')).toBe(0.25)
    expect(() => floatArg('--t', 0, 5)('')).toThrow(/--t must be a number/)
  })
})

describe('device and execution provider', () => {
  it('picks the provider from the device', () => {
    expect(parseTarget(undefined, undefined)).toEqual({ provider: 'cpu' })
    expect(parseTarget('cuda:1', undefined, 4)).toEqual({
      provider: 'cuda',
      deviceIndex: 1,
      threads: 4
    })
    expect(parseTarget('cuda:0', 'webgpu')).toEqual({ provider: 'webgpu', deviceIndex: 0 })
    // A bare index is a GPU, as device_id is in the API.
    expect(parseTarget('0', undefined)).toEqual({ provider: 'cuda', deviceIndex: 0 })
    expect(parseTarget('2', 'webgpu')).toEqual({ provider: 'webgpu', deviceIndex: 2 })
  })

  it('rejects contradictions, naming the flag', () => {
    expect(appError(() => parseTarget('gpu', undefined)).field).toBe('--device')
    expect(appError(() => parseTarget('-1', undefined)).field).toBe('--device')
    expect(appError(() => parseTarget('cuda:0', 'cpu')).field).toBe('--ep')
    expect(appError(() => parseTarget('cpu', 'cuda')).message).toMatch(
      /--ep cuda needs a GPU: add --device cuda:N/
    )
  })
})

describe('errors and exit codes', () => {
  it('maps error kinds to exit codes', () => {
    expect(exitCodeFor(new AppError('invalid_input', 'x', { field: '--n' }))).toBe(EXIT.usage)
    expect(exitCodeFor(new AppError('invalid_input', 'x', { file: 'in.jsonl' }))).toBe(
      EXIT.badInput
    )
    expect(exitCodeFor(new AppError('bundle_invalid', 'x'))).toBe(EXIT.badInput)
    expect(exitCodeFor(new AppError('not_found', 'x'))).toBe(EXIT.badInput)
    expect(exitCodeFor(new AppError('internal', 'x'))).toBe(EXIT.failed)
    expect(exitCodeFor(new Error('boom'))).toBe(EXIT.failed)
  })

  it('writes one line naming the option the engine complained about', () => {
    const lines: string[] = []
    const write = process.stderr.write.bind(process.stderr)
    process.stderr.write = ((s: string) => (lines.push(s), true)) as typeof process.stderr.write
    try {
      reportError(new AppError('invalid_input', 'too long', { field: 'options.maxNewTokens' }))
      reportError(
        new AppError('bundle_invalid', '/b: not a bundle folder', { field: 'dir', file: '/b' })
      )
      // The file is named once: the message already says it.
      reportError(new AppError('bundle_invalid', 'no manifest', { field: 'dir', file: '/c' }))
    } finally {
      process.stderr.write = write
    }
    expect(lines).toEqual([
      'talkative: too long (--max-new-tokens)\n',
      'talkative: /b: not a bundle folder (--bundle)\n',
      'talkative: no manifest (--bundle, /c)\n'
    ])
  })
})

describe('help', () => {
  it('lists every flag of each command', () => {
    const generate = generateCommand().helpInformation()
    for (const flag of [
      '--text',
      '--messages',
      '--max-new-tokens',
      '--top-p',
      '--seed',
      '--stop-at-end-of-turn',
      '--analyze',
      '--device',
      '--ep'
    ]) {
      expect(generate).toContain(flag)
    }
    expect(chatCommand().helpInformation()).toContain('--system')
    const run = runCommand().helpInformation()
    for (const flag of [
      '--dataset',
      '--out',
      '--format',
      '--generate',
      '--on-bad-line',
      '--device',
      '--ep',
      '--quiet'
    ]) {
      expect(run).toContain(flag)
    }
  })
})
