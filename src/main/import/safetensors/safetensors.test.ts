import { spawnSync } from 'node:child_process'
import { promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CheckpointError } from '../errors'
import {
  READ_CHUNK_BYTES,
  countNonFinite,
  describeNonFinite,
  encodeTensorValues,
  nonFiniteError,
  openSafetensors,
  readSafetensorsTensor,
  scanSafetensorsNonFinite,
  writeSafetensors,
  type SafetensorsFile
} from '.'
import { writeRawSafetensors } from '../../../../test/fixtures/hf/badCheckpoints'
import { seededUniform } from '../../../../test/fixtures/hf/writeHfFolder'

let tmp: string
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-safetensors-'))
})
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true })
})

function random(n: number, seed: number): Float32Array {
  const next = seededUniform(seed)
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) out[i] = next() * 3
  return out
}

/** The values a 16-bit format holds for `x` (via the writer's own encoding and an exact decode). */
function through(dtype: 'F16' | 'BF16', x: Float32Array): Float32Array {
  const bits = new Uint16Array(encodeTensorValues(dtype, x).slice().buffer)
  const out = new Float32Array(bits.length)
  const u = new Uint32Array(out.buffer)
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!
    if (dtype === 'BF16') u[i] = h << 16
    else {
      // Independent decode of float16 (not the reader's table).
      const s = h & 0x8000 ? -1 : 1
      const e = (h >> 10) & 0x1f
      const m = h & 0x3ff
      out[i] =
        e === 0
          ? s * m * 2 ** -24
          : e === 31
            ? m
              ? NaN
              : s * Infinity
            : s * (1 + m / 1024) * 2 ** (e - 15)
    }
  }
  return out
}

async function expectCheckpointError(
  p: Promise<unknown>,
  want: { problem: string; file: string; tensor?: string; field?: string; message?: RegExp }
): Promise<CheckpointError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e
  )
  expect(err).toBeInstanceOf(CheckpointError)
  const e = err as CheckpointError
  expect({ problem: e.problem, file: e.file }).toEqual({ problem: want.problem, file: want.file })
  expect(e.code).toBe(want.problem === 'cancelled' ? 'cancelled' : 'bundle_invalid')
  expect(e.message.startsWith(want.file)).toBe(true)
  if (want.tensor !== undefined) {
    expect(e.tensor).toBe(want.tensor)
    expect(e.message).toContain(`"${want.tensor}"`)
  }
  if (want.field !== undefined) expect(e.field).toBe(want.field)
  if (want.message) expect(e.message).toMatch(want.message)
  return e
}

describe('safetensors round trip', () => {
  const a = random(6 * 5, 1)
  const b = random(7, 2)
  const c = random(4 * 3 * 2, 3)

  it.each(['F32', 'F16', 'BF16'] as const)(
    '%s: what is written reads back exactly',
    async (dtype) => {
      const file = path.join(tmp, `rt-${dtype}.safetensors`)
      await writeSafetensors(
        file,
        new Map([
          ['a', { dtype, shape: [6, 5], data: a }],
          ['b', { dtype, shape: [7], data: Array.from(b) }],
          ['scalar', { dtype, shape: [], data: [1.5] }],
          ['empty', { dtype, shape: [0, 4], data: [] }],
          [
            'c',
            {
              dtype,
              shape: [4, 3, 2],
              data: (start, out) => out.set(c.subarray(start, start + out.length))
            }
          ]
        ]),
        { format: 'pt', note: 'hello' }
      )
      const st = await openSafetensors(file, { label: 'rt.safetensors' })
      expect(st.metadata).toEqual({ format: 'pt', note: 'hello' })
      expect([...st.tensors.keys()]).toEqual(['a', 'b', 'scalar', 'empty', 'c'])
      expect(st.headerLength % 8).toBe(0)
      expect(st.tensors.get('a')).toMatchObject({ dtype, shape: [6, 5], numel: 30 })
      const want = (x: Float32Array): Float32Array => (dtype === 'F32' ? x : through(dtype, x))
      expect(await readSafetensorsTensor(st, 'a')).toEqual(want(a))
      expect(await readSafetensorsTensor(st, 'b')).toEqual(want(b))
      expect(await readSafetensorsTensor(st, 'c')).toEqual(want(c))
      expect(Array.from(await readSafetensorsTensor(st, 'scalar'))).toEqual([1.5])
      expect((await readSafetensorsTensor(st, 'empty')).length).toBe(0)
      // A row range, into a caller's array.
      const into = new Float32Array(2 * 5)
      const rows = await readSafetensorsTensor(st, 'a', { rows: { start: 3, end: 5 }, into })
      expect(rows).toBe(into)
      expect(rows).toEqual(want(a).subarray(15, 25))
      // Into a window of a larger array: the values land there, the neighbours stay as they were.
      const big = new Float32Array(40).fill(7)
      const window = big.subarray(3, 33)
      await readSafetensorsTensor(st, 'a', { into: window })
      expect(window).toEqual(want(a))
      expect([...big.subarray(0, 3), ...big.subarray(33)]).toEqual(Array(10).fill(7))
      await expect(readSafetensorsTensor(st, 'a', { into: new Float32Array(29) })).rejects.toThrow(
        /output array holds 29 values, the read gives 30/
      )
    }
  )

  it('streams a tensor larger than one chunk, reporting every byte, for every dtype', async () => {
    const n = READ_CHUNK_BYTES / 2 + 12345 // BF16: just over one chunk; F32: just over two
    const values = random(n, 9)
    for (const dtype of ['F32', 'BF16', 'F16'] as const) {
      const file = path.join(tmp, `big-${dtype}.safetensors`)
      await writeSafetensors(file, { big: { dtype, shape: [n], data: values } })
      const st = await openSafetensors(file)
      let reported = 0
      let calls = 0
      const got = await readSafetensorsTensor(st, 'big', {
        onBytes: (bytes) => {
          reported += bytes
          calls++
        }
      })
      expect(reported).toBe(st.tensors.get('big')!.byteLength)
      expect(calls).toBeGreaterThan(1)
      const want = dtype === 'F32' ? values : through(dtype, values)
      let mismatches = 0
      for (let i = 0; i < n; i++) if (!Object.is(got[i], want[i])) mismatches++
      expect(mismatches).toBe(0)
    }
  })

  it('cancels through the AbortSignal, before and during a read', async () => {
    const file = path.join(tmp, 'big-BF16.safetensors')
    const st = await openSafetensors(file, { label: 'big.safetensors' })
    const before = new AbortController()
    before.abort()
    await expectCheckpointError(readSafetensorsTensor(st, 'big', { signal: before.signal }), {
      problem: 'cancelled',
      file: 'big.safetensors'
    })
    const during = new AbortController()
    await expectCheckpointError(
      readSafetensorsTensor(st, 'big', { signal: during.signal, onBytes: () => during.abort() }),
      { problem: 'cancelled', file: 'big.safetensors' }
    )
  })
})

describe('safetensors header validation', () => {
  const f32 = (n: number): Uint8Array => encodeTensorValues('F32', random(n, 5)).slice()

  const cases: {
    name: string
    header?: unknown
    raw?: string
    data?: Uint8Array
    headerLength?: bigint
    problem: string
    tensor?: string
    field?: string
    message: RegExp
  }[] = [
    {
      name: 'file shorter than 8 bytes',
      raw: '',
      headerLength: 0n,
      problem: 'truncated',
      message: /too short/
    },
    {
      name: 'header length beyond the limit',
      header: {},
      headerLength: 1n << 50n,
      problem: 'header_invalid',
      message: /limit/
    },
    {
      name: 'header length beyond the file',
      header: {},
      headerLength: 4096n,
      problem: 'truncated',
      message: /truncated/
    },
    {
      name: 'header not JSON',
      raw: '{"x": ',
      problem: 'header_invalid',
      message: /not valid JSON/
    },
    {
      name: 'header not an object',
      raw: '[1, 2, 3]   ',
      problem: 'header_invalid',
      message: /start with/
    },
    {
      name: 'metadata not strings',
      header: { __metadata__: { a: 1 } },
      problem: 'header_invalid',
      field: '__metadata__.a',
      message: /strings/
    },
    {
      name: 'unknown dtype',
      header: { w: { dtype: 'F33', shape: [2], data_offsets: [0, 8] } },
      data: f32(2),
      problem: 'header_invalid',
      tensor: 'w',
      field: 'dtype',
      message: /unknown dtype "F33"/
    },
    {
      name: 'negative dimension',
      header: { w: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } },
      data: f32(2),
      problem: 'shape_invalid',
      tensor: 'w',
      field: 'shape',
      message: /non-negative integer/
    },
    {
      name: 'fractional dimension',
      header: { w: { dtype: 'F32', shape: [2.5], data_offsets: [0, 8] } },
      data: f32(2),
      problem: 'shape_invalid',
      tensor: 'w',
      message: /non-negative integer/
    },
    {
      name: 'astronomically large shape',
      header: { w: { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 8] } },
      data: f32(2),
      problem: 'shape_invalid',
      tensor: 'w',
      message: /more elements/
    },
    {
      name: 'begin after end',
      header: { w: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } },
      data: f32(2),
      problem: 'offsets_invalid',
      tensor: 'w',
      message: /after end/
    },
    {
      name: 'offsets not integers',
      header: { w: { dtype: 'F32', shape: [2], data_offsets: [0, '8'] } },
      data: f32(2),
      problem: 'offsets_invalid',
      tensor: 'w',
      field: 'data_offsets',
      message: /non-negative integers/
    },
    {
      name: 'byte length disagrees with dtype × shape',
      header: { w: { dtype: 'F16', shape: [2], data_offsets: [0, 8] } },
      data: f32(2),
      problem: 'offsets_invalid',
      tensor: 'w',
      message: /needs 4/
    },
    {
      name: 'data past the end of the file',
      header: { w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } },
      data: f32(3),
      problem: 'truncated',
      tensor: 'w',
      message: /holds only 12/
    },
    {
      name: 'overlapping tensors',
      header: {
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] }
      },
      data: f32(3),
      problem: 'overlap',
      tensor: 'b',
      message: /overlap tensor "a"/
    },
    {
      name: 'a tensor nested inside a larger one',
      header: {
        big: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
        small: { dtype: 'F32', shape: [1], data_offsets: [4, 8] }
      },
      data: f32(4),
      problem: 'overlap',
      tensor: 'small',
      message: /overlap tensor "big"/
    }
  ]

  it.each(cases)('$name → $problem', async (c) => {
    const file = path.join(tmp, 'bad.safetensors')
    await writeRawSafetensors(file, c.header, c.data ?? new Uint8Array(0), {
      rawHeader: c.raw,
      headerLength: c.headerLength
    })
    if (c.raw === '' && c.headerLength === 0n) await fs.truncate(file, 5)
    await expectCheckpointError(openSafetensors(file, { label: 'bad.safetensors' }), {
      problem: c.problem,
      file: 'bad.safetensors',
      tensor: c.tensor,
      field: c.field,
      message: c.message
    })
  })

  it('accepts a header with __metadata__, zero-size tensors and a hole between tensors', async () => {
    const file = path.join(tmp, 'holes.safetensors')
    await writeRawSafetensors(
      file,
      {
        __metadata__: { format: 'pt' },
        a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
        z: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
        b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] }
      },
      f32(3)
    )
    const st = await openSafetensors(file)
    expect([...st.tensors.keys()]).toEqual(['a', 'z', 'b'])
  })

  it('lists every dtype the format defines, and refuses to read all but F32, F16 and BF16', async () => {
    const file = path.join(tmp, 'dtypes.safetensors')
    const header = {
      f64: { dtype: 'F64', shape: [2], data_offsets: [0, 16] },
      i64: { dtype: 'I64', shape: [2], data_offsets: [16, 32] },
      mask: { dtype: 'BOOL', shape: [1, 1, 4, 4], data_offsets: [32, 48] },
      i8: { dtype: 'I8', shape: [4], data_offsets: [48, 52] },
      fp8: { dtype: 'F8_E4M3', shape: [4], data_offsets: [52, 56] },
      fp4: { dtype: 'F4', shape: [8], data_offsets: [56, 60] },
      ok: { dtype: 'F32', shape: [1], data_offsets: [60, 64] }
    }
    await writeRawSafetensors(file, header, new Uint8Array(64))
    const st = await openSafetensors(file, { label: 'dtypes.safetensors' })
    expect(st.tensors.get('mask')).toMatchObject({ dtype: 'BOOL', numel: 16, byteLength: 16 })
    expect(st.tensors.get('fp4')).toMatchObject({ numel: 8, byteLength: 4 })
    for (const [name, dtype] of [
      ['f64', 'F64'],
      ['i64', 'I64'],
      ['mask', 'BOOL'],
      ['i8', 'I8'],
      ['fp8', 'F8_E4M3'],
      ['fp4', 'F4']
    ]) {
      await expectCheckpointError(readSafetensorsTensor(st, name!), {
        problem: 'dtype_unsupported',
        file: 'dtypes.safetensors',
        tensor: name,
        field: 'dtype',
        message: new RegExp(`dtype ${dtype} is not supported; supported dtypes are F32, F16, BF16`)
      })
    }
    expect(Array.from(await readSafetensorsTensor(st, 'ok'))).toEqual([0])
    await expectCheckpointError(readSafetensorsTensor(st, 'nope'), {
      problem: 'missing_tensor',
      file: 'dtypes.safetensors',
      tensor: 'nope'
    })
  })
})

describe('safetensors file checks', () => {
  it('refuses a FIFO without opening it (no hang) and a directory', async () => {
    const fifo = path.join(tmp, 'pipe.safetensors')
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0)
    await expectCheckpointError(openSafetensors(fifo, { label: 'pipe.safetensors' }), {
      problem: 'not_regular_file',
      file: 'pipe.safetensors',
      message: /FIFO/
    })
    const dir = path.join(tmp, 'dir.safetensors')
    await fs.mkdir(dir)
    await expectCheckpointError(openSafetensors(dir, { label: 'dir.safetensors' }), {
      problem: 'not_regular_file',
      file: 'dir.safetensors',
      message: /directory/
    })
    await expectCheckpointError(
      openSafetensors(path.join(tmp, 'absent.safetensors'), { label: 'absent' }),
      {
        problem: 'missing_file',
        file: 'absent'
      }
    )
  })

  it('refuses to read from a file replaced or truncated after its header was read', async () => {
    const file = path.join(tmp, 'changing.safetensors')
    const values = random(1000, 4)
    await writeSafetensors(file, { w: { dtype: 'F32', shape: [1000], data: values } })
    const st: SafetensorsFile = await openSafetensors(file, { label: 'changing.safetensors' })
    await fs.truncate(file, st.dataStart + 100)
    await expectCheckpointError(readSafetensorsTensor(st, 'w'), {
      problem: 'unreadable',
      file: 'changing.safetensors',
      message: /changed since/
    })
  })
})

describe('non-finite scan', () => {
  it('counts NaN and infinities and names the tensor', async () => {
    const v = Float32Array.from([1, NaN, 2, Infinity, -Infinity, NaN, 0, -0, 3e38])
    expect(countNonFinite(v)).toEqual({ nan: 2, posInf: 1, negInf: 1, firstIndex: 1 })
    expect(countNonFinite(Float32Array.from([1, 2, -3.4e38]))).toBeNull()

    const file = path.join(tmp, 'nan.safetensors')
    await writeSafetensors(file, {
      fine: { dtype: 'F32', shape: [3], data: [1, 2, 3] },
      bad: { dtype: 'BF16', shape: [3, 3], data: v },
      half: { dtype: 'F16', shape: [2], data: [1e6, 1] } // overflows float16 → +Inf
    })
    const st = await openSafetensors(file, { label: 'nan.safetensors' })
    const reports = await scanSafetensorsNonFinite(st)
    expect(reports.map((r) => [r.tensor, r.nan, r.posInf, r.negInf])).toEqual([
      ['bad', 2, 1, 1],
      ['half', 0, 1, 0]
    ])
    expect(describeNonFinite(reports[0]!)).toBe(
      'nan.safetensors: tensor "bad": 2 NaN, 1 +Inf, 1 -Inf of 9 values (first at flat index 1)'
    )
    const err = nonFiniteError(reports[0]!)
    expect(err).toMatchObject({
      problem: 'non_finite',
      code: 'bundle_invalid',
      file: 'nan.safetensors',
      tensor: 'bad'
    })
  })
})
