/**
 * A restricted unpickler for `torch.save`'s `data.pkl` (pickle protocols 2–5). It builds plain
 * data (dicts, lists, tuples, sets, strings, bytes, numbers) and lazy tensor references, and
 * never executes anything: callables are names looked up in ./policy.ts. Tensor bytes are not
 * touched here; a `TensorRef` says where they are, and only the tensors a caller asks for are
 * ever read (./tensors.ts).
 *
 * Every loop consumes at least one byte of the pickle, the memo, stack and nesting are bounded,
 * and dict keys are hashed within a budget, so no input makes this hang or blow up memory.
 */
import { CheckpointError, type CheckpointProblem } from '../errors'
import {
  BUILD_CALLS,
  INERT_CALLS,
  NDARRAY_TYPES,
  NEWOBJ_CONTAINERS,
  RECONSTRUCTOR_BASES,
  TENSOR_TYPES,
  judgeGlobal,
  type BuildRule
} from './policy'

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | PyTuple
  | PyDict
  | PySet
  | GlobalRef
  | Placeholder
  | StorageRef
  | TensorRef

export class PyTuple {
  constructor(readonly items: readonly PickleValue[]) {}
}

/** A Python dict (or OrderedDict); keys keep insertion order, as Python's do. */
export class PyDict {
  /** Attributes set by BUILD (a state dict's `_metadata`); kept, never interpreted. */
  attributes: PickleValue = null
  readonly #entries = new Map<string, [PickleValue, PickleValue]>()

  constructor(readonly ordered: boolean) {}

  get size(): number {
    return this.#entries.size
  }

  set(key: PickleValue, value: PickleValue): void {
    this.#entries.set(hashKey(key), [key, value])
  }

  /** Looks up a string key (the only kind a lens checkpoint's dicts are read by). */
  get(key: string): PickleValue | undefined {
    return this.#entries.get(stringKey(key))?.[1]
  }

  has(key: string): boolean {
    return this.#entries.has(stringKey(key))
  }

  entries(): IterableIterator<[PickleValue, PickleValue]> {
    return this.#entries.values()
  }
}

export class PySet {
  readonly #items = new Map<string, PickleValue>()
  constructor(readonly frozen: boolean) {}

  add(item: PickleValue): void {
    this.#items.set(hashKey(item), item)
  }

  values(): IterableIterator<PickleValue> {
    return this.#items.values()
  }

  get size(): number {
    return this.#items.size
  }
}

/** A Python name mentioned by the pickle and used as a value (a dtype, a class), never called. */
export class GlobalRef {
  constructor(readonly qualified: string) {}
}

/**
 * What an allowed-but-unneeded construction left behind (numpy RNG state, an optimizer object
 * being built with NEWOBJ/BUILD): only its type name. Its arguments are dropped, so storages
 * only it referenced are never read.
 */
export class Placeholder {
  constructor(
    readonly typeName: string,
    readonly how: 'call' | 'newobj'
  ) {}
}

export type TorchDtype =
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'float64'
  | 'int64'
  | 'int32'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'bool'
  | 'complex64'
  | 'complex128'
  | 'quantized'
  | 'unknown'

const STORAGE_TYPES: Readonly<Record<string, { dtype: TorchDtype; elementSize: number }>> = {
  'torch.FloatStorage': { dtype: 'float32', elementSize: 4 },
  'torch.HalfStorage': { dtype: 'float16', elementSize: 2 },
  'torch.BFloat16Storage': { dtype: 'bfloat16', elementSize: 2 },
  'torch.DoubleStorage': { dtype: 'float64', elementSize: 8 },
  'torch.LongStorage': { dtype: 'int64', elementSize: 8 },
  'torch.IntStorage': { dtype: 'int32', elementSize: 4 },
  'torch.ShortStorage': { dtype: 'int16', elementSize: 2 },
  'torch.CharStorage': { dtype: 'int8', elementSize: 1 },
  'torch.ByteStorage': { dtype: 'uint8', elementSize: 1 },
  'torch.BoolStorage': { dtype: 'bool', elementSize: 1 },
  'torch.ComplexFloatStorage': { dtype: 'complex64', elementSize: 8 },
  'torch.ComplexDoubleStorage': { dtype: 'complex128', elementSize: 16 },
  'torch.QInt8Storage': { dtype: 'quantized', elementSize: 1 },
  'torch.QUInt8Storage': { dtype: 'quantized', elementSize: 1 },
  'torch.QInt32Storage': { dtype: 'quantized', elementSize: 4 },
  'torch.QUInt4x2Storage': { dtype: 'quantized', elementSize: 1 },
  'torch.QUInt2x4Storage': { dtype: 'quantized', elementSize: 1 },
  'torch.UntypedStorage': { dtype: 'uint8', elementSize: 1 },
  'torch.storage.UntypedStorage': { dtype: 'uint8', elementSize: 1 }
}

/** One `data/<key>` record, as the pickle describes it. Never read here. */
export class StorageRef {
  constructor(
    readonly key: string,
    readonly storageType: string,
    readonly dtype: TorchDtype,
    /** Bytes per element; 0 for a storage type we do not know (it can never be read). */
    readonly elementSize: number,
    readonly location: string,
    readonly numel: number
  ) {}
}

/** A tensor view: where its elements are (storage, offset, strides) and its shape. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
    readonly isParameter: boolean
  ) {}
}

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

export interface PickleLimits {
  maxMemo: number
  /** Items on the stack and under all open MARKs together. */
  maxStackItems: number
  /** Open MARKs (nesting of tuples/lists/dicts being built). */
  maxMarkDepth: number
  /** Bytes of one string or bytes object. */
  maxStringBytes: number
  /** Bytes of one arbitrary-precision integer (LONG1/LONG4). */
  maxLongBytes: number
  /** Dimensions of one tensor. */
  maxTensorRank: number
}

export const DEFAULT_PICKLE_LIMITS: PickleLimits = {
  maxMemo: 4_000_000,
  maxStackItems: 4_000_000,
  maxMarkDepth: 1_000,
  maxStringBytes: 64 * 1024 * 1024,
  maxLongBytes: 1_024,
  maxTensorRank: 16
}

// ---------------------------------------------------------------------------------------------
// Hashing dict keys and set items like Python (equal values, equal keys)
// ---------------------------------------------------------------------------------------------

const MAX_KEY_CHARS = 4096
const identities = new WeakMap<object, number>()
let nextIdentity = 1

class KeyError extends Error {}

function stringKey(s: string): string {
  return `s${s.length}:${s}`
}

function hashKey(value: PickleValue): string {
  const budget = { left: MAX_KEY_CHARS }
  return hashInto(value, budget)
}

function spend(budget: { left: number }, s: string): string {
  budget.left -= s.length
  if (budget.left < 0) throw new KeyError('a dict key or set item too large to hash')
  return s
}

function hashInto(value: PickleValue, budget: { left: number }): string {
  if (value === null) return spend(budget, 'N')
  switch (typeof value) {
    case 'boolean':
      return spend(budget, value ? 'i1' : 'i0') // Python: True == 1, False == 0
    case 'number':
      return spend(budget, Number.isInteger(value) ? `i${value}` : `f${value}`)
    case 'bigint':
      return spend(budget, `i${value}`)
    case 'string':
      return spend(budget, stringKey(value))
  }
  if (value instanceof Uint8Array) {
    return spend(budget, `b${value.length}:${Buffer.from(value).toString('latin1')}`)
  }
  if (value instanceof PyTuple) {
    spend(budget, 't(')
    const parts = value.items.map((item) => hashInto(item, budget))
    return `t(${parts.join(',')})`
  }
  if (value instanceof PySet && value.frozen) {
    const parts = [...value.values()].map((item) => hashInto(item, budget)).sort()
    return spend(budget, `fs{${parts.join(',')}}`)
  }
  if (value instanceof GlobalRef) return spend(budget, `g:${value.qualified}`)
  if (value instanceof Placeholder || value instanceof StorageRef || value instanceof TensorRef) {
    // Python hashes these objects by identity.
    let id = identities.get(value)
    if (id === undefined) {
      id = nextIdentity++
      identities.set(value, id)
    }
    return spend(budget, `o${id}`)
  }
  throw new KeyError(`unhashable ${describe(value)} used as a dict key or set item`)
}

export function describe(value: PickleValue | undefined): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'None'
  if (typeof value === 'boolean') return 'a bool'
  if (typeof value === 'number') return Number.isInteger(value) ? 'an int' : 'a float'
  if (typeof value === 'bigint') return 'an int'
  if (typeof value === 'string') return 'a str'
  if (value instanceof Uint8Array) return 'bytes'
  if (Array.isArray(value)) return 'a list'
  if (value instanceof PyTuple) return 'a tuple'
  if (value instanceof PyDict) return value.ordered ? 'an OrderedDict' : 'a dict'
  if (value instanceof PySet) return value.frozen ? 'a frozenset' : 'a set'
  if (value instanceof GlobalRef) return `the name ${value.qualified}`
  if (value instanceof Placeholder) return `an object of type ${value.typeName} (not read)`
  if (value instanceof StorageRef) return 'a raw storage'
  return 'a tensor'
}

// ---------------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------------

const OP = {
  MARK: 0x28, // (
  STOP: 0x2e, // .
  POP: 0x30, // 0
  POP_MARK: 0x31, // 1
  DUP: 0x32, // 2
  FLOAT: 0x46, // F
  INT: 0x49, // I
  BININT: 0x4a, // J
  BININT1: 0x4b, // K
  LONG: 0x4c, // L
  BININT2: 0x4d, // M
  NONE: 0x4e, // N
  PERSID: 0x50, // P
  BINPERSID: 0x51, // Q
  REDUCE: 0x52, // R
  STRING: 0x53, // S
  BINSTRING: 0x54, // T
  SHORT_BINSTRING: 0x55, // U
  UNICODE: 0x56, // V
  BINUNICODE: 0x58, // X
  APPEND: 0x61, // a
  BUILD: 0x62, // b
  GLOBAL: 0x63, // c
  DICT: 0x64, // d
  EMPTY_DICT: 0x7d, // }
  APPENDS: 0x65, // e
  GET: 0x67, // g
  BINGET: 0x68, // h
  INST: 0x69, // i
  LONG_BINGET: 0x6a, // j
  LIST: 0x6c, // l
  EMPTY_LIST: 0x5d, // ]
  OBJ: 0x6f, // o
  PUT: 0x70, // p
  BINPUT: 0x71, // q
  LONG_BINPUT: 0x72, // r
  SETITEM: 0x73, // s
  TUPLE: 0x74, // t
  EMPTY_TUPLE: 0x29, // )
  SETITEMS: 0x75, // u
  BINFLOAT: 0x47, // G
  PROTO: 0x80,
  NEWOBJ: 0x81,
  EXT1: 0x82,
  EXT2: 0x83,
  EXT4: 0x84,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  LONG1: 0x8a,
  LONG4: 0x8b,
  BINBYTES: 0x42, // B
  SHORT_BINBYTES: 0x43, // C
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  BINBYTES8: 0x8e,
  EMPTY_SET: 0x8f,
  ADDITEMS: 0x90,
  FROZENSET: 0x91,
  NEWOBJ_EX: 0x92,
  STACK_GLOBAL: 0x93,
  MEMOIZE: 0x94,
  FRAME: 0x95,
  BYTEARRAY8: 0x96,
  NEXT_BUFFER: 0x97,
  READONLY_BUFFER: 0x98
} as const

const utf8 = new TextDecoder('utf-8', { fatal: true })

export interface UnpickleOptions {
  /** The checkpoint file, for messages. */
  file: string
  /** The record name (`<prefix>/data.pkl`), for messages. */
  record: string
  limits?: Partial<PickleLimits>
}

export interface UnpickleResult {
  value: PickleValue
  /** Types of the placeholders made (sorted). */
  placeholderTypes: string[]
}

/** Unpickles `data.pkl`. Throws only `CheckpointError`. */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): UnpickleResult {
  const machine = new Machine(bytes, options)
  try {
    const value = machine.run()
    return { value, placeholderTypes: [...machine.placeholderTypes].sort() }
  } catch (err) {
    if (err instanceof CheckpointError) throw err
    if (err instanceof KeyError) throw machine.error('invalid', err.message)
    throw machine.error('unreadable', `malformed pickle (${(err as Error).message})`)
  }
}

class Machine {
  readonly #bytes: Uint8Array
  readonly #view: DataView
  readonly #file: string
  readonly #record: string
  readonly #limits: PickleLimits
  #pos = 0
  #opStart = 0
  #stack: PickleValue[] = []
  readonly #metastack: PickleValue[][] = []
  #stackItems = 0
  readonly #memo = new Map<number, PickleValue>()
  readonly #storages = new Map<string, StorageRef>()
  readonly placeholderTypes = new Set<string>()

  constructor(bytes: Uint8Array, options: UnpickleOptions) {
    this.#bytes = bytes
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.#file = options.file
    this.#record = options.record
    this.#limits = { ...DEFAULT_PICKLE_LIMITS, ...options.limits }
  }

  error(reason: CheckpointProblem, message: string): CheckpointError {
    return CheckpointError.at(reason, this.#file, `${this.#record} byte ${this.#opStart}`, message)
  }

  run(): PickleValue {
    if (this.#bytes.length < 2 || this.#bytes[0] !== OP.PROTO) {
      throw this.error('unsupported', 'not a protocol 2–5 pickle (no PROTO opcode first)')
    }
    for (;;) {
      this.#opStart = this.#pos
      const op = this.#u8()
      if (op === OP.STOP) {
        const result = this.#pop()
        if (this.#metastack.length > 0) throw this.error('unreadable', 'STOP inside an open MARK')
        return result
      }
      this.#step(op)
    }
  }

  // --- reading ------------------------------------------------------------------------------

  #need(n: number): void {
    if (n < 0 || this.#pos + n > this.#bytes.length) {
      throw this.error('unreadable', 'the pickle ends in the middle of an opcode (truncated)')
    }
  }

  #u8(): number {
    this.#need(1)
    return this.#bytes[this.#pos++]!
  }

  #u16(): number {
    this.#need(2)
    const v = this.#view.getUint16(this.#pos, true)
    this.#pos += 2
    return v
  }

  #u32(): number {
    this.#need(4)
    const v = this.#view.getUint32(this.#pos, true)
    this.#pos += 4
    return v
  }

  #i32(): number {
    this.#need(4)
    const v = this.#view.getInt32(this.#pos, true)
    this.#pos += 4
    return v
  }

  #u64(): number {
    this.#need(8)
    const v = this.#view.getBigUint64(this.#pos, true)
    this.#pos += 8
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.error('too_large', 'a length beyond 2^53')
    return Number(v)
  }

  #take(n: number): Uint8Array {
    this.#need(n)
    const out = this.#bytes.subarray(this.#pos, this.#pos + n)
    this.#pos += n
    return out
  }

  #line(): string {
    const end = this.#bytes.indexOf(0x0a, this.#pos)
    if (end < 0 || end - this.#pos > 1024) {
      throw this.error('unreadable', 'a text opcode without its newline (truncated)')
    }
    const text = Buffer.from(this.#bytes.subarray(this.#pos, end)).toString('latin1')
    this.#pos = end + 1
    return text
  }

  #stringBytes(n: number): Uint8Array {
    if (n > this.#limits.maxStringBytes) {
      throw this.error(
        'too_large',
        `a ${n}-byte string; the limit is ${this.#limits.maxStringBytes}`
      )
    }
    return this.#take(n)
  }

  #utf8(n: number): string {
    const raw = this.#stringBytes(n)
    try {
      return utf8.decode(raw)
    } catch {
      throw this.error('unreadable', 'a string that is not valid UTF-8')
    }
  }

  // --- stack --------------------------------------------------------------------------------

  #push(v: PickleValue): void {
    if (++this.#stackItems > this.#limits.maxStackItems) {
      throw this.error('too_large', `more than ${this.#limits.maxStackItems} items on the stack`)
    }
    this.#stack.push(v)
  }

  #pop(): PickleValue {
    if (this.#stack.length === 0) throw this.error('unreadable', 'pops an empty stack')
    this.#stackItems--
    return this.#stack.pop() as PickleValue
  }

  #top(): PickleValue {
    if (this.#stack.length === 0) throw this.error('unreadable', 'reads an empty stack')
    return this.#stack[this.#stack.length - 1]!
  }

  #mark(): void {
    if (this.#metastack.length >= this.#limits.maxMarkDepth) {
      throw this.error('too_large', `more than ${this.#limits.maxMarkDepth} nested MARKs`)
    }
    this.#metastack.push(this.#stack)
    this.#stack = []
  }

  #popMark(): PickleValue[] {
    const outer = this.#metastack.pop()
    if (outer === undefined) throw this.error('unreadable', 'no MARK to pop to')
    const items = this.#stack
    this.#stack = outer
    this.#stackItems -= items.length
    return items
  }

  #memoPut(index: number, value: PickleValue): void {
    if (!this.#memo.has(index) && this.#memo.size >= this.#limits.maxMemo) {
      throw this.error('too_large', `more than ${this.#limits.maxMemo} memo entries`)
    }
    this.#memo.set(index, value)
  }

  #placeholder(typeName: string, how: Placeholder['how']): Placeholder {
    this.placeholderTypes.add(typeName)
    return new Placeholder(typeName, how)
  }

  #memoGet(index: number): PickleValue {
    const v = this.#memo.get(index)
    if (v === undefined) throw this.error('unreadable', `memo entry ${index} was never stored`)
    return v
  }

  // --- opcodes ------------------------------------------------------------------------------

  #step(op: number): void {
    switch (op) {
      case OP.PROTO: {
        const proto = this.#u8()
        if (proto < 2 || proto > 5)
          throw this.error('unsupported', `pickle protocol ${proto}; 2–5 are read`)
        return
      }
      case OP.FRAME: {
        const n = this.#u64()
        if (this.#pos + n > this.#bytes.length)
          throw this.error('unreadable', 'a frame past the end (truncated)')
        return
      }
      case OP.MARK:
        return this.#mark()
      case OP.POP:
        this.#pop()
        return
      case OP.POP_MARK:
        this.#popMark()
        return
      case OP.DUP:
        return this.#push(this.#top())
      case OP.NONE:
        return this.#push(null)
      case OP.NEWTRUE:
        return this.#push(true)
      case OP.NEWFALSE:
        return this.#push(false)
      case OP.BININT:
        return this.#push(this.#i32())
      case OP.BININT1:
        return this.#push(this.#u8())
      case OP.BININT2:
        return this.#push(this.#u16())
      case OP.LONG1:
        return this.#push(this.#long(this.#u8()))
      case OP.LONG4: {
        const n = this.#i32()
        if (n < 0) throw this.error('unreadable', 'negative LONG4 length')
        return this.#push(this.#long(n))
      }
      case OP.INT:
        return this.#push(this.#textInt(this.#line()))
      case OP.LONG:
        return this.#push(this.#textInt(this.#line().replace(/L$/, '')))
      case OP.FLOAT: {
        const text = this.#line()
        const v = Number(text)
        if (text.trim() === '' || (Number.isNaN(v) && !/nan/i.test(text))) {
          throw this.error('unreadable', `FLOAT "${text.slice(0, 32)}" is not a number`)
        }
        return this.#push(v)
      }
      case OP.BINFLOAT: {
        this.#need(8)
        const v = this.#view.getFloat64(this.#pos, false)
        this.#pos += 8
        return this.#push(v)
      }
      case OP.BINUNICODE:
        return this.#push(this.#utf8(this.#u32()))
      case OP.SHORT_BINUNICODE:
        return this.#push(this.#utf8(this.#u8()))
      case OP.BINUNICODE8:
        return this.#push(this.#utf8(this.#u64()))
      case OP.BINSTRING: {
        // Python 2 str; torch.load decodes it as UTF-8.
        const n = this.#i32()
        if (n < 0) throw this.error('unreadable', 'negative BINSTRING length')
        return this.#push(this.#utf8(n))
      }
      case OP.SHORT_BINSTRING:
        return this.#push(this.#utf8(this.#u8()))
      case OP.BINBYTES:
        return this.#push(Uint8Array.from(this.#stringBytes(this.#u32())))
      case OP.SHORT_BINBYTES:
        return this.#push(Uint8Array.from(this.#stringBytes(this.#u8())))
      case OP.BINBYTES8:
      case OP.BYTEARRAY8:
        return this.#push(Uint8Array.from(this.#stringBytes(this.#u64())))
      case OP.EMPTY_DICT:
        return this.#push(new PyDict(false))
      case OP.EMPTY_LIST:
        return this.#push([])
      case OP.EMPTY_TUPLE:
        return this.#push(new PyTuple([]))
      case OP.EMPTY_SET:
        return this.#push(new PySet(false))
      case OP.TUPLE:
        return this.#push(new PyTuple(this.#popMark()))
      case OP.TUPLE1: {
        const a = this.#pop()
        return this.#push(new PyTuple([a]))
      }
      case OP.TUPLE2: {
        const b = this.#pop()
        const a = this.#pop()
        return this.#push(new PyTuple([a, b]))
      }
      case OP.TUPLE3: {
        const c = this.#pop()
        const b = this.#pop()
        const a = this.#pop()
        return this.#push(new PyTuple([a, b, c]))
      }
      case OP.LIST:
        return this.#push(this.#popMark())
      case OP.DICT: {
        const items = this.#popMark()
        const dict = new PyDict(false)
        this.#setItems(dict, items)
        return this.#push(dict)
      }
      case OP.FROZENSET: {
        const set = new PySet(true)
        for (const item of this.#popMark()) set.add(item)
        return this.#push(set)
      }
      case OP.APPEND: {
        const item = this.#pop()
        return this.#append(this.#top(), [item])
      }
      case OP.APPENDS: {
        const items = this.#popMark()
        return this.#append(this.#top(), items)
      }
      case OP.SETITEM: {
        const value = this.#pop()
        const key = this.#pop()
        return this.#setItems(this.#top(), [key, value])
      }
      case OP.SETITEMS: {
        const items = this.#popMark()
        return this.#setItems(this.#top(), items)
      }
      case OP.ADDITEMS: {
        const items = this.#popMark()
        const target = this.#top()
        if (target instanceof Placeholder) return
        if (!(target instanceof PySet) || target.frozen) {
          throw this.error('unreadable', `ADDITEMS on ${describe(target)}`)
        }
        for (const item of items) target.add(item)
        return
      }
      case OP.PUT:
        return this.#memoPut(this.#textIndex(this.#line()), this.#top())
      case OP.BINPUT:
        return this.#memoPut(this.#u8(), this.#top())
      case OP.LONG_BINPUT:
        return this.#memoPut(this.#u32(), this.#top())
      case OP.MEMOIZE:
        return this.#memoPut(this.#memo.size, this.#top())
      case OP.GET:
        return this.#push(this.#memoGet(this.#textIndex(this.#line())))
      case OP.BINGET:
        return this.#push(this.#memoGet(this.#u8()))
      case OP.LONG_BINGET:
        return this.#push(this.#memoGet(this.#u32()))
      case OP.GLOBAL: {
        const module = this.#line()
        const name = this.#line()
        return this.#push(this.#global(module, name))
      }
      case OP.STACK_GLOBAL: {
        const name = this.#pop()
        const module = this.#pop()
        if (typeof module !== 'string' || typeof name !== 'string') {
          throw this.error('unreadable', 'STACK_GLOBAL needs two strings')
        }
        return this.#push(this.#global(module, name))
      }
      case OP.REDUCE: {
        const args = this.#pop()
        const callable = this.#pop()
        return this.#push(this.#call(callable, args))
      }
      case OP.NEWOBJ: {
        const args = this.#pop()
        const cls = this.#pop()
        return this.#push(this.#newObject(cls, args))
      }
      case OP.NEWOBJ_EX: {
        this.#pop() // kwargs
        const args = this.#pop()
        const cls = this.#pop()
        return this.#push(this.#newObject(cls, args))
      }
      case OP.INST: {
        const cls = this.#global(this.#line(), this.#line())
        const args = new PyTuple(this.#popMark())
        return this.#push(this.#call(cls, args))
      }
      case OP.OBJ: {
        const items = this.#popMark()
        if (items.length === 0) throw this.error('unreadable', 'OBJ without a class')
        return this.#push(this.#call(items[0]!, new PyTuple(items.slice(1))))
      }
      case OP.BUILD: {
        const state = this.#pop()
        return this.#build(this.#top(), state)
      }
      case OP.BINPERSID:
        return this.#push(this.#persistentLoad(this.#pop()))
      case OP.PERSID:
        throw this.error('unsupported', 'a text persistent id (torch.save writes binary ones)')
      case OP.EXT1:
      case OP.EXT2:
      case OP.EXT4:
        throw this.error(
          'unsafe',
          'an extension-registry reference (EXT opcode): it names an arbitrary callable by number'
        )
      case OP.NEXT_BUFFER:
      case OP.READONLY_BUFFER:
        throw this.error(
          'unsupported',
          'an out-of-band buffer (protocol 5); torch.save never writes one'
        )
      case OP.STRING:
      case OP.UNICODE:
        throw this.error(
          'unsupported',
          'a protocol-0 text string; torch.save writes binary strings'
        )
      default:
        throw this.error('unreadable', `unknown opcode 0x${op.toString(16).padStart(2, '0')}`)
    }
  }

  #long(n: number): number | bigint {
    if (n > this.#limits.maxLongBytes) {
      throw this.error(
        'too_large',
        `a ${n}-byte integer; the limit is ${this.#limits.maxLongBytes}`
      )
    }
    const raw = this.#take(n)
    if (n === 0) return 0
    let v = 0n
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(raw[i]!)
    if (raw[n - 1]! & 0x80) v -= 1n << BigInt(8 * n)
    return Number.isSafeInteger(Number(v)) && BigInt(Number(v)) === v ? Number(v) : v
  }

  #textInt(text: string): number | bigint | boolean {
    if (text === '01') return true // protocol 0/1 spell bools as INT 01 / 00
    if (text === '00') return false
    if (!/^[-+]?\d{1,400}$/.test(text))
      throw this.error('unreadable', `INT "${text.slice(0, 32)}" is not an integer`)
    const v = BigInt(text)
    return Number.isSafeInteger(Number(v)) ? Number(v) : v
  }

  #textIndex(text: string): number {
    if (!/^\d{1,10}$/.test(text))
      throw this.error('unreadable', `memo index "${text.slice(0, 16)}"`)
    return Number(text)
  }

  #append(target: PickleValue, items: PickleValue[]): void {
    if (target instanceof Placeholder) return
    if (!Array.isArray(target)) throw this.error('unreadable', `APPEND to ${describe(target)}`)
    for (const item of items) target.push(item)
  }

  #setItems(target: PickleValue, items: PickleValue[]): void {
    if (items.length % 2 !== 0)
      throw this.error('unreadable', 'SETITEMS with an odd number of items')
    if (target instanceof Placeholder) return
    if (!(target instanceof PyDict))
      throw this.error('unreadable', `SETITEM on ${describe(target)}`)
    for (let i = 0; i < items.length; i += 2) target.set(items[i]!, items[i + 1]!)
  }

  #global(module: string, name: string): GlobalRef {
    const verdict = judgeGlobal(module, name)
    if (!verdict.ok) {
      throw this.error(
        'unsafe',
        `the pickle names ${verdict.qualified}: ${verdict.why}. Python's loader (torch.load) ` +
          'would import it and could call it, so the file is refused and nothing in it is used'
      )
    }
    return new GlobalRef(verdict.qualified)
  }

  /** REDUCE / INST / OBJ: Python would call `callable(*args)`. */
  #call(callable: PickleValue | undefined, args: PickleValue | undefined): PickleValue {
    if (!(callable instanceof GlobalRef)) {
      throw this.error(
        'unsafe',
        `calls ${describe(callable)}; only allow-listed names may be called`
      )
    }
    if (!(args instanceof PyTuple))
      throw this.error('unreadable', `call arguments are ${describe(args)}`)
    const name = callable.qualified
    const rule = BUILD_CALLS[name]
    if (rule !== undefined) return this.#construct(rule, name, args.items)
    if (INERT_CALLS.has(name)) return this.#placeholder(name, 'call')
    throw this.error(
      'unsafe',
      `the pickle calls ${name}, which is not on the allow-list of data constructors. Python's ` +
        'loader (torch.load) would run it, so the file is refused and nothing in it is used'
    )
  }

  #construct(rule: BuildRule, name: string, args: readonly PickleValue[]): PickleValue {
    const bad = (what: string): CheckpointError => this.error('unreadable', `${name}: ${what}`)
    switch (rule) {
      case 'tensor': {
        const [storage, offset, size, stride] = args
        if (!(storage instanceof StorageRef))
          throw bad(`expects a storage, got ${describe(storage)}`)
        const shape = this.#intTuple(size, `${name} size`)
        const strides = this.#intTuple(stride, `${name} stride`)
        if (shape.length !== strides.length) throw bad('size and stride differ in length')
        if (shape.length > this.#limits.maxTensorRank) {
          throw this.error('too_large', `a ${shape.length}-dimensional tensor`)
        }
        if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
          throw bad('storage offset must be a non-negative int')
        }
        return new TensorRef(storage, offset, shape, strides, false)
      }
      case 'parameter':
      case 'parameter_with_state': {
        const data = args[0]
        if (!(data instanceof TensorRef)) throw bad(`expects a tensor, got ${describe(data)}`)
        return new TensorRef(data.storage, data.offset, data.shape, data.stride, true)
      }
      case 'tensor_from_type': {
        const [func, newType, funcArgs] = args
        if (!(func instanceof GlobalRef) || !(newType instanceof GlobalRef)) {
          throw bad('expects a function and a type')
        }
        if (!TENSOR_TYPES.has(newType.qualified)) {
          throw this.error(
            'unsafe',
            `rebuilds a tensor as ${newType.qualified}, which is not a plain tensor type`
          )
        }
        const result = this.#call(func, funcArgs)
        if (!(result instanceof TensorRef)) throw bad('the rebuilt object is not a tensor')
        return newType.qualified === 'torch.nn.parameter.Parameter'
          ? new TensorRef(result.storage, result.offset, result.shape, result.stride, true)
          : result
      }
      case 'ordered_dict':
      case 'default_dict': {
        const dict = new PyDict(rule === 'ordered_dict')
        const init = rule === 'ordered_dict' ? args[0] : undefined
        if (init !== undefined) {
          const pairs = Array.isArray(init) ? init : init instanceof PyTuple ? init.items : null
          if (pairs === null) throw bad(`expects a list of pairs, got ${describe(init)}`)
          for (const pair of pairs) {
            const items = Array.isArray(pair) ? pair : pair instanceof PyTuple ? pair.items : null
            if (items === null || items.length !== 2)
              throw bad('an item is not a (key, value) pair')
            dict.set(items[0]!, items[1]!)
          }
        }
        return dict
      }
      case 'set':
      case 'frozenset': {
        const set = new PySet(rule === 'frozenset')
        const init = args[0]
        if (init !== undefined) {
          const items = Array.isArray(init) ? init : init instanceof PyTuple ? init.items : null
          if (items === null) throw bad(`expects a list, got ${describe(init)}`)
          for (const item of items) set.add(item)
        }
        return set
      }
      case 'codecs_encode': {
        // Protocol 2 writes bytes as _codecs.encode(str, 'latin1').
        const [text, encoding] = args
        if (typeof text !== 'string' || typeof encoding !== 'string')
          throw bad('expects (str, str)')
        if (!['latin1', 'latin-1', 'iso-8859-1', 'iso8859-1'].includes(encoding.toLowerCase())) {
          throw bad(`encoding "${encoding.slice(0, 20)}" (torch.save writes latin1)`)
        }
        const out = new Uint8Array(text.length)
        for (let i = 0; i < text.length; i++) {
          const c = text.charCodeAt(i)
          if (c > 0xff) throw bad('a character outside latin1')
          out[i] = c
        }
        return out
      }
      case 'size': {
        const dims = args[0]
        const items = Array.isArray(dims) ? dims : dims instanceof PyTuple ? dims.items : null
        if (items === null) throw bad(`expects a sequence, got ${describe(dims)}`)
        return new PyTuple(items)
      }
      case 'reconstructor': {
        // copyreg._reconstructor(cls, base, state): Python calls base.__new__ and, unless base is
        // object, base.__init__: only plain builtin bases are inert.
        const [cls, base] = args
        if (!(cls instanceof GlobalRef) || !(base instanceof GlobalRef))
          throw bad('expects two classes')
        if (!RECONSTRUCTOR_BASES.has(base.qualified)) {
          throw this.error(
            'unsafe',
            `copyreg._reconstructor would run ${base.qualified}.__init__ on load; refused`
          )
        }
        return this.#placeholder(cls.qualified, 'newobj')
      }
      case 'newobj': {
        const [cls, ...rest] = args
        return this.#newObject(cls as PickleValue, new PyTuple(rest))
      }
      case 'ndarray_reconstruct': {
        const [subtype] = args
        if (!(subtype instanceof GlobalRef) || !NDARRAY_TYPES.has(subtype.qualified)) {
          throw this.error(
            'unsafe',
            `${name} of ${describe(subtype)}: only plain numpy.ndarray is inert (a subclass runs ` +
              'its own code when created)'
          )
        }
        return this.#placeholder('numpy.ndarray', 'call')
      }
    }
  }

  /** NEWOBJ: Python would call `cls.__new__(cls, *args)` (no __init__). */
  #newObject(cls: PickleValue, args: PickleValue): PickleValue {
    if (!(cls instanceof GlobalRef)) {
      throw this.error(
        'unsafe',
        `NEWOBJ on ${describe(cls)}; only a named class may be instantiated`
      )
    }
    if (!(args instanceof PyTuple))
      throw this.error('unreadable', `NEWOBJ arguments are ${describe(args)}`)
    const container = NEWOBJ_CONTAINERS[cls.qualified]
    if (container === 'dict') return new PyDict(cls.qualified === 'collections.OrderedDict')
    if (container === 'list') return []
    if (container === 'set') return new PySet(false)
    return this.#placeholder(cls.qualified, 'newobj')
  }

  /** BUILD: Python would call `obj.__setstate__(state)` or update `obj.__dict__`. */
  #build(target: PickleValue, state: PickleValue): void {
    if (target instanceof Placeholder) return
    if (target instanceof PyDict) {
      // A state dict's `_metadata` (and nothing else) arrives this way.
      target.attributes = state
      return
    }
    throw this.error('unreadable', `BUILD on ${describe(target)}, which torch.save never writes`)
  }

  /** `('storage', <storage type>, key, location, numel)`, torch's persistent id for storages. */
  #persistentLoad(pid: PickleValue): StorageRef {
    if (!(pid instanceof PyTuple) || pid.items[0] !== 'storage' || pid.items.length !== 5) {
      throw this.error(
        'unreadable',
        `a persistent id that is not a torch storage (${describe(pid)})`
      )
    }
    const [, type, key, location, numel] = pid.items
    if (!(type instanceof GlobalRef)) throw this.error('unreadable', 'storage type is not a name')
    if (typeof key !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(key) || key.includes('..')) {
      throw this.error(
        'unsafe',
        `storage key ${JSON.stringify(String(key)).slice(0, 40)} is not a plain record name`
      )
    }
    if (typeof location !== 'string' || location.length > 64) {
      throw this.error('unreadable', 'storage location is not a short string')
    }
    if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
      throw this.error('unreadable', `storage "${key}" has element count ${String(numel)}`)
    }
    const known = STORAGE_TYPES[type.qualified]
    if (!known && !/^torch\.[A-Za-z0-9_]+Storage$/.test(type.qualified)) {
      throw this.error(
        'unreadable',
        `storage "${key}" has type ${type.qualified}, which is not a torch storage`
      )
    }
    const ref = new StorageRef(
      key,
      type.qualified,
      known?.dtype ?? 'unknown',
      known?.elementSize ?? 0,
      location,
      numel
    )
    const seen = this.#storages.get(key)
    if (seen) {
      if (seen.storageType !== ref.storageType || seen.numel !== ref.numel) {
        throw this.error('invalid', `storage "${key}" is described twice, differently`)
      }
      return seen
    }
    this.#storages.set(key, ref)
    return ref
  }

  #intTuple(value: PickleValue | undefined, what: string): number[] {
    const items = value instanceof PyTuple ? value.items : Array.isArray(value) ? value : null
    if (items === null) throw this.error('unreadable', `${what} is ${describe(value)}`)
    return items.map((v) => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
        throw this.error('unreadable', `${what} holds ${typeof v === 'number' ? v : describe(v)}`)
      }
      return v
    })
  }
}
