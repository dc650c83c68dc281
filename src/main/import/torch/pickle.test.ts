/**
 * The restricted unpickler: real Python pickles of plain data (protocols 2–5, written by the
 * fixture script), and hand-assembled opcode streams for every refusal and limit.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { TorchArchive } from './archive'
import { toJson } from './config'
import { CheckpointError } from '../errors'
import {
  Placeholder,
  PyDict,
  PySet,
  PyTuple,
  TensorRef,
  unpickle,
  type PickleLimits,
  type PickleValue
} from './pickle'
import { readFloatTensor } from './tensors'

const FIXTURES = fileURLToPath(
  new URL('../../../../test/fixtures/lens-checkpoints/', import.meta.url)
)

/** Assembles a pickle opcode by opcode. */
class Pickle {
  readonly #bytes: number[] = []
  constructor(protocol = 2) {
    this.#bytes.push(0x80, protocol)
  }
  raw(...bytes: number[]): this {
    this.#bytes.push(...bytes)
    return this
  }
  text(s: string): this {
    for (const b of Buffer.from(s, 'latin1')) this.#bytes.push(b)
    return this
  }
  u32(n: number): this {
    const b = Buffer.alloc(4)
    b.writeUInt32LE(n)
    return this.raw(...b)
  }
  int(n: number): this {
    const b = Buffer.alloc(4)
    b.writeInt32LE(n)
    return this.raw(0x4a, ...b)
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8')
    return this.raw(0x58)
      .u32(b.length)
      .raw(...b)
  }
  global(module: string, name: string): this {
    return this.raw(0x63).text(`${module}\n${name}\n`)
  }
  mark(): this {
    return this.raw(0x28)
  }
  tuple(): this {
    return this.raw(0x74)
  }
  emptyTuple(): this {
    return this.raw(0x29)
  }
  reduce(): this {
    return this.raw(0x52)
  }
  put(i: number): this {
    return this.raw(0x71, i)
  }
  get(i: number): this {
    return this.raw(0x68, i)
  }
  /** A storage persistent id + _rebuild_tensor_v2(storage, 0, shape, stride, False, {}). */
  tensor(key: string, numel: number, shape: number[], stride: number[]): this {
    this.global('torch._utils', '_rebuild_tensor_v2').mark()
    this.mark()
      .str('storage')
      .global('torch', 'FloatStorage')
      .str(key)
      .str('cpu')
      .int(numel)
      .tuple()
    this.raw(0x51) // BINPERSID
    this.int(0)
    this.mark()
    for (const d of shape) this.int(d)
    this.tuple().mark()
    for (const s of stride) this.int(s)
    this.tuple().raw(0x89).raw(0x7d).tuple().reduce()
    return this
  }
  done(): Uint8Array {
    return Uint8Array.from([...this.#bytes, 0x2e])
  }
}

const load = (bytes: Uint8Array, limits?: Partial<PickleLimits>): PickleValue =>
  unpickle(bytes, { file: 'test.pt', record: 'test/data.pkl', limits }).value

function refusal(bytes: Uint8Array, limits?: Partial<PickleLimits>): CheckpointError {
  try {
    load(bytes, limits)
  } catch (err) {
    expect(err).toBeInstanceOf(CheckpointError)
    return err as CheckpointError
  }
  throw new Error('the pickle was read; a refusal was expected')
}

describe('plain Python pickles, protocols 2–5', () => {
  for (const protocol of [2, 3, 4, 5]) {
    it(`protocol ${protocol}`, () => {
      const bytes = readFileSync(path.join(FIXTURES, `plain-protocol-${protocol}.pkl`))
      const v = load(bytes) as PyDict
      expect(v).toBeInstanceOf(PyDict)
      expect(v.get('str')).toBe('héllo ✓')
      expect(v.get('ints')).toEqual([
        0,
        1,
        -1,
        255,
        256,
        65535,
        65536,
        -(2 ** 31),
        2 ** 31 - 1,
        2 ** 31,
        2n ** 63n,
        -(2n ** 70n)
      ])
      const floats = v.get('floats') as number[]
      expect(floats).toEqual([0, -0, 1.5, -2.25e-300, 1e300, Infinity])
      expect(Object.is(floats[1], -0)).toBe(true)
      expect(v.get('bools')).toEqual([true, false, null])
      expect(v.get('bytes')).toEqual(Uint8Array.from([0, 1, 255, 97, 98, 99]))
      const tuple = v.get('tuple') as PyTuple
      expect(tuple.items[0]).toBe(1)
      expect((tuple.items[1] as PyTuple).items).toEqual(['nested', 2.5])
      expect((tuple.items[2] as PyTuple).items).toEqual([])
      expect([...(v.get('set') as PySet).values()].sort()).toEqual([1, 2, 3])
      const frozen = v.get('frozenset') as PySet
      expect(frozen.frozen).toBe(true)
      expect([...frozen.values()]).toEqual(['a'])
      const ordered = v.get('ordered') as PyDict
      expect(ordered.ordered).toBe(true)
      expect([...ordered.entries()]).toEqual([
        ['b', 1],
        ['a', 2]
      ])
      const shared = (v.get('shared') as PyTuple).items
      expect(shared[0]).toBe(shared[1]) // the memo keeps identity, as Python does
      expect(v.get('long_list')).toEqual(Array.from({ length: 300 }, (_, i) => i))
    })
  }
})

describe('objects torch.save writes besides state-dict tensors', () => {
  it('a Parameter (with and without attributes), torch.Size and a defaultdict', async () => {
    const file = path.join(FIXTURES, 'objects.pt')
    const expected = JSON.parse(readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8')) as {
      objects: Record<string, { shape: number[]; f32: string }>
    }
    const archive = await TorchArchive.open(file)
    try {
      const bytes = await archive.readRecord('data.pkl', 1 << 20)
      const v = unpickle(bytes, { file, record: 'objects/data.pkl' }).value as PyDict
      for (const key of ['param', 'noted']) {
        const ref = v.get(key) as TensorRef
        expect(ref).toBeInstanceOf(TensorRef)
        expect(ref.isParameter).toBe(true)
        const want = expected.objects[key]!
        expect(ref.shape).toEqual(want.shape)
        const data = await readFloatTensor(archive, ref, key)
        expect(Buffer.from(data.buffer).equals(Buffer.from(want.f32, 'base64'))).toBe(true)
      }
      expect((v.get('size') as PyTuple).items).toEqual([2, 3])
      const dd = v.get('defaultdict') as PyDict
      expect([...dd.entries()]).toEqual([['a', [1]]])
    } finally {
      await archive.close()
    }
  })

  it('_rebuild_parameter_with_state and _rebuild_from_type_v2 (newer torch) give tensors', () => {
    const withState = new Pickle()
      .global('torch._utils', '_rebuild_parameter_with_state')
      .mark()
      .tensor('0', 4, [4], [1])
      .raw(0x88)
      .global('collections', 'OrderedDict')
      .emptyTuple()
      .reduce()
      .raw(0x7d)
      .tuple()
      .reduce()
      .done()
    const a = load(withState) as TensorRef
    expect(a.isParameter).toBe(true)
    const fromType = new Pickle()
      .global('torch._tensor', '_rebuild_from_type_v2')
      .mark()
      .global('torch._utils', '_rebuild_tensor_v2')
      .global('torch.nn.parameter', 'Parameter')
      .mark()
      .mark()
      .str('storage')
      .global('torch', 'HalfStorage')
      .str('1')
      .str('cpu')
      .int(6)
      .tuple()
      .raw(0x51)
      .int(0)
      .int(2)
      .int(3)
      .raw(0x86)
      .int(3)
      .int(1)
      .raw(0x86)
      .raw(0x89)
      .raw(0x7d)
      .tuple()
      .raw(0x7d)
      .tuple()
      .reduce()
      .done()
    const b = load(fromType) as TensorRef
    expect(b.isParameter).toBe(true)
    expect(b.shape).toEqual([2, 3])
    expect(b.storage.dtype).toBe('float16')
  })
})

describe('what becomes data, and what becomes a placeholder', () => {
  it('an arbitrary class built with NEWOBJ/BUILD/SETITEMS is an inert placeholder', () => {
    const bytes = new Pickle()
      .raw(0x7d) // {
      .str('optimizer')
      .global('mylib.training', 'FancyOptimizer')
      .emptyTuple()
      .raw(0x81) // NEWOBJ
      .raw(0x7d)
      .str('state')
      .tensor('7', 1 << 30, [1 << 30], [1])
      .raw(0x73) // SETITEM into the state dict
      .raw(0x62) // BUILD
      .mark()
      .str('k')
      .str('v')
      .raw(0x75) // SETITEMS on the placeholder
      .raw(0x73)
      .done()
    const v = load(bytes) as PyDict
    const opt = v.get('optimizer')
    expect(opt).toBeInstanceOf(Placeholder)
    expect((opt as Placeholder).typeName).toBe('mylib.training.FancyOptimizer')
    expect(toJson(v, 'test.pt')).toEqual({
      optimizer: { $object: 'mylib.training.FancyOptimizer' }
    })
  })

  it('numpy RNG state is a placeholder; tensors are lazy references', () => {
    const bytes = new Pickle()
      .mark()
      .global('numpy.core.multiarray', '_reconstruct')
      .global('numpy', 'ndarray')
      .mark()
      .int(0)
      .tuple()
      .global('_codecs', 'encode')
      .str('b')
      .str('latin1')
      .raw(0x86)
      .reduce()
      .raw(0x87)
      .reduce()
      .mark()
      .int(1)
      .global('numpy', 'dtype')
      .str('u4')
      .raw(0x89, 0x88, 0x87)
      .reduce()
      .tuple()
      .raw(0x62) // BUILD on the placeholder
      .tensor('0', 12, [3, 4], [1, 3])
      .tuple()
      .done()
    const [rng, tensor] = (load(bytes) as PyTuple).items
    expect(rng).toEqual(new Placeholder('numpy.ndarray', 'call'))
    expect(tensor).toBeInstanceOf(TensorRef)
    expect((tensor as TensorRef).shape).toEqual([3, 4])
    expect((tensor as TensorRef).stride).toEqual([1, 3])
    expect((tensor as TensorRef).storage.numel).toBe(12)
  })

  it('Python dict semantics: True and 1 are one key; tuples hash by value', () => {
    const bytes = new Pickle()
      .raw(0x7d)
      .mark()
      .raw(0x88)
      .str('a')
      .int(1)
      .str('b')
      .int(1)
      .int(2)
      .raw(0x86)
      .str('c')
      .int(1)
      .int(2)
      .raw(0x86)
      .str('d')
      .raw(0x75)
      .done()
    const d = load(bytes) as PyDict
    expect(d.size).toBe(2)
    expect([...d.entries()].map(([, v]) => v)).toEqual(['b', 'd'])
  })

  it('a key named __proto__ stays a key in the JSON rendering', () => {
    const d = load(new Pickle().raw(0x7d).str('__proto__').str('x').raw(0x73).done())
    const json = toJson(d, 'test.pt') as Record<string, unknown>
    expect(Object.getPrototypeOf(json)).toBe(Object.prototype)
    expect(Object.keys(json)).toEqual(['__proto__'])
  })

  it('a list containing itself loads, and the JSON rendering refuses it instead of recursing', () => {
    const v = load(new Pickle().raw(0x5d).put(0).get(0).raw(0x61).done()) as PickleValue[]
    expect(v[0]).toBe(v)
    expect(() => toJson(v, 'test.pt')).toThrow(
      'test.pt: config: too large or too deeply nested to record'
    )
  })
})

describe('refusals', () => {
  const GLOBAL_REFUSED =
    "Python's loader (torch.load) would import it and could call it, so the file is refused and nothing in it is used"

  it.each([
    ['builtins', 'exec', 'builtins.exec: a Python builtin that can run code or reach the system'],
    [
      '__builtin__',
      'eval',
      'builtins.eval (written as __builtin__.eval): a Python builtin that can run code'
    ],
    ['builtins', 'getattr', 'builtins.getattr: a Python builtin'],
    ['nt', 'system', 'nt.system: "nt" can run commands'],
    ['posix', 'system', 'posix.system: "posix" can run commands'],
    ['os', 'system', 'os.system: "os" can run commands'],
    ['subprocess', 'Popen', 'subprocess.Popen: "subprocess" can run commands'],
    ['commands', 'getoutput', 'subprocess.getoutput (written as commands.getoutput)'],
    ['__builtin__', 'reduce', 'functools.reduce (written as __builtin__.reduce)'],
    ['torch', 'load', 'torch.load: "torch.load" can run commands'],
    ['torch.storage', '_load_from_bytes', 'torch.storage._load_from_bytes'],
    ['numpy', 'load', 'numpy.load'],
    ['importlib', 'import_module', 'importlib.import_module']
  ])('GLOBAL %s.%s is refused wherever it appears', (module, name, why) => {
    const err = refusal(new Pickle().global(module, name).done())
    expect(err.problem).toBe('unsafe')
    expect(err.message).toContain(`test.pt: test/data.pkl byte 2: the pickle names ${why}`)
    expect(err.message).toContain(GLOBAL_REFUSED)
  })

  it('STACK_GLOBAL names are judged the same way, dunder attributes included', () => {
    const stack = (module: string, name: string): Uint8Array =>
      new Pickle(4)
        .raw(0x8c, module.length)
        .text(module)
        .raw(0x8c, name.length)
        .text(name)
        .raw(0x93)
        .done()
    expect(refusal(stack('posix', 'system')).message).toContain('the pickle names posix.system')
    expect(refusal(stack('torch._utils', '_rebuild_tensor_v2.__globals__')).message).toContain(
      'the pickle names torch._utils._rebuild_tensor_v2.__globals__: a dunder attribute'
    )
    expect(refusal(stack('os;rm', 'x')).message).toContain('not a Python identifier')
  })

  it('calling (REDUCE, INST, OBJ) anything off the allow-list is refused, naming it', () => {
    const calls = [
      new Pickle().global('mylib', 'make_thing').emptyTuple().reduce().done(),
      new Pickle().mark().raw(0x69).text('mylib\nmake_thing\n').done(),
      new Pickle().mark().global('mylib', 'make_thing').raw(0x6f).done()
    ]
    for (const bytes of calls) {
      const err = refusal(bytes)
      expect(err.problem).toBe('unsafe')
      expect(err.message).toContain(
        "the pickle calls mylib.make_thing, which is not on the allow-list of data constructors. Python's loader (torch.load) would run it"
      )
    }
  })

  it('calling an object the pickle built (not a name) is refused', () => {
    const bytes = new Pickle()
      .global('mylib', 'Thing')
      .emptyTuple()
      .raw(0x81)
      .emptyTuple()
      .reduce()
      .done()
    expect(refusal(bytes).message).toContain(
      'calls an object of type mylib.Thing (not read); only allow-listed names may be called'
    )
  })

  it('extension-registry opcodes are refused', () => {
    const err = refusal(new Pickle().raw(0x82, 1).done())
    expect(err.problem).toBe('unsafe')
    expect(err.message).toContain('an extension-registry reference (EXT opcode)')
  })

  it('copyreg._reconstructor only with a plain builtin base', () => {
    const reconstruct = (baseModule: string, baseName: string): Uint8Array =>
      new Pickle()
        .global('copy_reg', '_reconstructor')
        .global('mylib', 'Config')
        .global(baseModule, baseName)
        .raw(0x4e)
        .raw(0x87)
        .reduce()
        .done()
    expect(load(reconstruct('__builtin__', 'object'))).toEqual(
      new Placeholder('mylib.Config', 'newobj')
    )
    expect(refusal(reconstruct('mylib', 'Base')).message).toContain(
      'copyreg._reconstructor would run mylib.Base.__init__ on load; refused'
    )
  })

  it('numpy _reconstruct of an ndarray subclass, and tensors rebuilt as other types, are refused', () => {
    const sub = new Pickle()
      .global('numpy.core.multiarray', '_reconstruct')
      .global('mylib', 'Array')
      .mark()
      .int(0)
      .tuple()
      .str('b')
      .raw(0x87)
      .reduce()
      .done()
    expect(refusal(sub).message).toContain(
      'numpy.core.multiarray._reconstruct of the name mylib.Array: only plain numpy.ndarray is inert'
    )
    const typed = new Pickle()
      .global('torch._tensor', '_rebuild_from_type_v2')
      .mark()
      .global('torch._utils', '_rebuild_tensor_v2')
      .global('mylib', 'EvilTensor')
      .emptyTuple()
      .raw(0x7d)
      .tuple()
      .reduce()
      .done()
    expect(refusal(typed).message).toContain('rebuilds a tensor as mylib.EvilTensor')
  })

  it('a storage key that is not a plain record name is refused', () => {
    const bytes = new Pickle()
      .mark()
      .str('storage')
      .global('torch', 'FloatStorage')
      .str('../data.pkl')
      .str('cpu')
      .int(4)
      .tuple()
      .raw(0x51)
      .done()
    const err = refusal(bytes)
    expect(err.problem).toBe('unsafe')
    expect(err.message).toContain('storage key "../data.pkl" is not a plain record name')
  })

  it('the same storage described twice differently is refused', () => {
    const bytes = new Pickle().tensor('0', 4, [4], [1]).tensor('0', 8, [8], [1]).raw(0x86).done()
    expect(refusal(bytes).message).toContain('storage "0" is described twice, differently')
  })

  it('malformed streams: no PROTO, other protocols, truncation, BUILD on a list, unknown opcodes', () => {
    expect(refusal(Uint8Array.from([0x4e, 0x2e])).message).toContain('not a protocol 2–5 pickle')
    expect(refusal(new Pickle(1).done()).message).toContain('pickle protocol 1; 2–5 are read')
    expect(refusal(new Pickle(6).done()).message).toContain('pickle protocol 6')
    const cut = new Pickle().str('hello world').done().subarray(0, 8)
    expect(refusal(cut).message).toContain('the pickle ends in the middle of an opcode (truncated)')
    expect(refusal(new Pickle().raw(0x5d).raw(0x7d).raw(0x62).done()).message).toContain(
      'BUILD on a list, which torch.save never writes'
    )
    expect(refusal(new Pickle().raw(0xff).done()).message).toContain('unknown opcode 0xff')
    expect(refusal(new Pickle().raw(0x97).done()).message).toContain('an out-of-band buffer')
  })

  it('unhashable and over-large dict keys', () => {
    const listKey = new Pickle().raw(0x7d).raw(0x5d).int(1).raw(0x73).done()
    expect(refusal(listKey).message).toContain('unhashable a list used as a dict key')
    // t(n+1) = (t(n), t(n)) 60 times: 2^60 leaves through shared references.
    const POP = 0x30
    const p = new Pickle().raw(0x7d).int(1).int(1).raw(0x86).put(0)
    for (let i = 0; i < 60; i++) p.raw(POP).get(0).get(0).raw(0x86).put(0)
    const started = performance.now()
    const err = refusal(p.raw(POP).get(0).int(1).raw(0x73).done())
    expect(err.message).toContain('a dict key or set item too large to hash')
    expect(performance.now() - started).toBeLessThan(1000)
  })
})

describe('limits', () => {
  it('memo entries', () => {
    const p = new Pickle(4).raw(0x4e)
    for (let i = 0; i < 11; i++) p.raw(0x94)
    expect(refusal(p.done(), { maxMemo: 10 }).message).toContain('more than 10 memo entries')
  })

  it('nesting depth', () => {
    const p = new Pickle()
    for (let i = 0; i < 1001; i++) p.mark()
    const err = refusal(p.done())
    expect(err.problem).toBe('too_large')
    expect(err.message).toContain('more than 1000 nested MARKs')
  })

  it('stack items', () => {
    const p = new Pickle()
    for (let i = 0; i < 101; i++) p.raw(0x4e)
    expect(refusal(p.done(), { maxStackItems: 100 }).message).toContain(
      'more than 100 items on the stack'
    )
  })

  it('string and integer sizes', () => {
    expect(
      refusal(new Pickle().str('x'.repeat(100)).done(), { maxStringBytes: 64 }).message
    ).toContain('a 100-byte string; the limit is 64')
    const huge = new Pickle()
      .raw(0x8b)
      .u32(2000)
      .raw(...new Array<number>(2000).fill(1))
      .done()
    expect(refusal(huge).message).toContain('a 2000-byte integer; the limit is 1024')
    // A declared length past the end is a truncation, not an allocation.
    const lying = new Pickle()
      .raw(0x58)
      .u32(1 << 20)
      .done()
    expect(refusal(lying).message).toContain('truncated')
  })

  it('tensor rank', () => {
    const shape = new Array<number>(17).fill(1)
    expect(refusal(new Pickle().tensor('0', 1, shape, shape).done()).message).toContain(
      'a 17-dimensional tensor'
    )
  })
})
