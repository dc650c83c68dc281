/**
 * A small ONNX graph builder over onnx-proto. The engine writes its own graphs (demo, synthetic
 * and lens parts) in code, so there is no Python exporter in the loop; names are made unique per
 * model because ONNX subgraphs (If/Loop bodies) share one namespace with their outer scopes.
 */
import { onnx } from 'onnx-proto'

export const OPSET = 17
const IR_VERSION = 8

export type ElemType = 'float32' | 'int64' | 'bool'
const ELEM: Record<ElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL
}

export type Dim = number | string | null
export type AttrValue =
  number | number[] | string | onnx.IGraphProto | { floats: number[] } | { float: number }

interface NameSource {
  next: number
}

export interface Weight {
  name: string
  dims: number[]
  data: Float32Array | BigInt64Array
  /** Stored in an external-data file instead (then `data` is empty): float32 at this place. */
  external?: ExternalRef
}

/** Where an initializer's bytes lie in its model's external-data file. */
export interface ExternalRef {
  location: string
  offset: number
  length: number
}

export class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = []
  readonly inputs: onnx.IValueInfoProto[] = []
  readonly outputs: onnx.IValueInfoProto[] = []
  readonly initializers: Weight[] = []
  readonly #names: NameSource

  constructor(names?: NameSource) {
    this.#names = names ?? { next: 0 }
  }

  /** A builder for a subgraph (If branch, Loop body) sharing this model's name counter. */
  sub(): GraphBuilder {
    return new GraphBuilder(this.#names)
  }

  fresh(hint: string): string {
    return `${hint}__${this.#names.next++}`
  }

  input(name: string, type: ElemType, shape: Dim[] | null): string {
    this.inputs.push(valueInfo(name, type, shape))
    return name
  }

  output(name: string, type: ElemType, shape: Dim[] | null = null): void {
    this.outputs.push(valueInfo(name, type, shape))
  }

  /** A graph input with a default value: callers may omit it (ONNX overridable initializer). */
  inputWithDefault(name: string, type: 'float32' | 'int64', shape: Dim[], value: Weight): string {
    this.inputs.push(valueInfo(name, type, shape))
    this.initializers.push({ ...value, name })
    return name
  }

  weight(name: string, dims: number[], data: Float32Array | BigInt64Array): string {
    if (data.length !== dims.reduce((a, b) => a * b, 1)) {
      throw new Error(`weight ${name}: ${data.length} values for dims [${dims.join(',')}]`)
    }
    this.initializers.push({ name, dims, data })
    return name
  }

  /** A float32 initializer whose bytes are written later into an external-data file. */
  externalWeight(name: string, dims: number[], ref: ExternalRef): string {
    this.initializers.push({ name, dims, data: new Float32Array(0), external: ref })
    return name
  }

  op(type: string, inputs: string[], attrs: Record<string, AttrValue> = {}, hint?: string): string {
    return this.opN(type, inputs, 1, attrs, hint)[0]!
  }

  opN(
    type: string,
    inputs: string[],
    outputCount: number,
    attrs: Record<string, AttrValue> = {},
    hint?: string
  ): string[] {
    const outs = Array.from({ length: outputCount }, () => this.fresh(hint ?? type.toLowerCase()))
    this.nodes.push({ opType: type, input: inputs, output: outs, attribute: encodeAttrs(attrs) })
    return outs
  }

  /** A node whose outputs get the given names (graph outputs, loop-carried values). */
  opTo(
    type: string,
    inputs: string[],
    outputs: string[],
    attrs: Record<string, AttrValue> = {}
  ): void {
    this.nodes.push({ opType: type, input: inputs, output: outputs, attribute: encodeAttrs(attrs) })
  }

  constI64(values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh('c')
    this.nodes.push({
      opType: 'Constant',
      input: [],
      output: [name],
      attribute: [
        {
          name: 'value',
          type: onnx.AttributeProto.AttributeType.TENSOR,
          t: tensorProto('', dims, BigInt64Array.from(values.map(BigInt)))
        }
      ]
    })
    return name
  }

  scalarI64(value: number): string {
    return this.constI64([value], [])
  }

  constF32(values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh('c')
    this.nodes.push({
      opType: 'Constant',
      input: [],
      output: [name],
      attribute: [
        {
          name: 'value',
          type: onnx.AttributeProto.AttributeType.TENSOR,
          t: tensorProto('', dims, Float32Array.from(values))
        }
      ]
    })
    return name
  }

  scalarF32(value: number): string {
    return this.constF32([value], [])
  }

  /** The proto of this (sub)graph; subgraphs never carry initializers (they read the outer scope). */
  toGraph(name: string, external?: ExternalWriter): onnx.IGraphProto {
    return {
      name,
      node: this.nodes,
      input: this.inputs,
      output: this.outputs,
      initializer: this.initializers.map((w) =>
        w.external
          ? externalTensorProto(w.name, w.dims, w.external)
          : tensorProto(w.name, w.dims, w.data, external)
      )
    }
  }
}

/** Collects initializer bytes into one external-data file (so bases over 2 GB work). */
export class ExternalWriter {
  readonly chunks: Uint8Array[] = []
  #offset = 0
  constructor(
    readonly location: string,
    readonly minBytes = 1024
  ) {}

  add(bytes: Uint8Array): { offset: number; length: number } {
    // 64-byte alignment lets ONNX Runtime memory-map tensors without copies.
    const pad = (64 - (this.#offset % 64)) % 64
    if (pad) this.chunks.push(new Uint8Array(pad))
    this.#offset += pad
    const at = this.#offset
    this.chunks.push(bytes)
    this.#offset += bytes.byteLength
    return { offset: at, length: bytes.byteLength }
  }

  get size(): number {
    return this.#offset
  }
}

export function tensorProto(
  name: string,
  dims: number[],
  data: Float32Array | BigInt64Array,
  external?: ExternalWriter
): onnx.ITensorProto {
  const dataType = data instanceof Float32Array ? ELEM.float32 : ELEM.int64
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  if (external && bytes.byteLength >= external.minBytes) {
    const { offset, length } = external.add(bytes)
    return {
      name,
      dims,
      dataType,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: external.location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(length) }
      ]
    }
  }
  return { name, dims, dataType, rawData: bytes }
}

/** A float32 tensor whose bytes lie in an external-data file (ONNX external data). */
export function externalTensorProto(
  name: string,
  dims: number[],
  ref: ExternalRef
): onnx.ITensorProto {
  return {
    name,
    dims,
    dataType: ELEM.float32,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: ref.location },
      { key: 'offset', value: String(ref.offset) },
      { key: 'length', value: String(ref.length) }
    ]
  }
}

function valueInfo(name: string, type: ElemType, shape: Dim[] | null): onnx.IValueInfoProto {
  const tensorType: onnx.TypeProto.ITensor = { elemType: ELEM[type] }
  if (shape) {
    tensorType.shape = {
      dim: shape.map((d) =>
        typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {}
      )
    }
  }
  return { name, type: { tensorType } }
}

function encodeAttrs(attrs: Record<string, AttrValue>): onnx.IAttributeProto[] {
  const T = onnx.AttributeProto.AttributeType
  return Object.entries(attrs).map(([name, v]): onnx.IAttributeProto => {
    if (typeof v === 'number') return { name, type: T.INT, i: v }
    if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) }
    if (Array.isArray(v)) return { name, type: T.INTS, ints: v }
    if ('floats' in v) return { name, type: T.FLOATS, floats: v.floats }
    if ('float' in v) return { name, type: T.FLOAT, f: v.float }
    return { name, type: T.GRAPH, g: v }
  })
}

export function encodeModel(graph: onnx.IGraphProto, producer: string): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: producer,
    graph
  })
  return onnx.ModelProto.encode(model).finish()
}

export function concatBytes(chunks: Uint8Array[]): Uint8Array {
  const total = chunks.reduce((n, c) => n + c.byteLength, 0)
  const out = new Uint8Array(total)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.byteLength
  }
  return out
}
