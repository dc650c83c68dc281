/**
 * Safetensors dtypes: the names the format defines, their sizes in bits, and the exact conversions
 * between the 16-bit float formats and float32 that the reader and the writer use.
 */

/** Every dtype name the safetensors format defines, with its element size in bits. */
export const SAFETENSORS_DTYPE_BITS = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64
} as const satisfies Record<string, number>

export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_BITS

/** The dtypes this reader converts to float32 (exactly: every value of these formats is a float32). */
export const READABLE_DTYPES = ['F32', 'F16', 'BF16'] as const
export type ReadableDtype = (typeof READABLE_DTYPES)[number]

export function isSafetensorsDtype(name: string): name is SafetensorsDtype {
  return Object.prototype.hasOwnProperty.call(SAFETENSORS_DTYPE_BITS, name)
}

export function isReadableDtype(name: string): name is ReadableDtype {
  return (READABLE_DTYPES as readonly string[]).includes(name)
}

/** Bytes per element of a readable dtype. */
export function bytesPerElement(dtype: ReadableDtype): 2 | 4 {
  return dtype === 'F32' ? 4 : 2
}

let f16Table: Uint32Array | undefined

/**
 * float16 bit pattern → float32 bit pattern, for all 65,536 inputs (256 KiB, built once). Exact:
 * subnormals are normalised, infinities kept, NaN payloads carried into the high mantissa bits.
 */
export function float16ToFloat32Table(): Uint32Array {
  if (f16Table) return f16Table
  const table = new Uint32Array(65536)
  for (let h = 0; h < 65536; h++) table[h] = float16BitsToFloat32Bits(h)
  f16Table = table
  return table
}

function float16BitsToFloat32Bits(h: number): number {
  const sign = (h & 0x8000) << 16
  const exponent = (h >>> 10) & 0x1f
  let mantissa = h & 0x3ff
  if (exponent === 0) {
    if (mantissa === 0) return sign >>> 0
    // Subnormal: shift the mantissa up until its leading one is the implicit bit.
    let e = 113
    while ((mantissa & 0x400) === 0) {
      mantissa <<= 1
      e--
    }
    return (sign | (e << 23) | ((mantissa & 0x3ff) << 13)) >>> 0
  }
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0
  return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0
}

/** float32 bit pattern → bfloat16 bit pattern, rounding to nearest, ties to even. NaN stays NaN. */
export function float32BitsToBfloat16Bits(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff
  const roundingBias = 0x7fff + ((bits >>> 16) & 1)
  return ((bits + roundingBias) >>> 16) & 0xffff
}

/**
 * float32 bit pattern → float16 bit pattern, rounding to nearest, ties to even, with gradual
 * underflow to subnormals and overflow to infinity (values ≥ 65520 in magnitude). NaN stays NaN.
 */
export function float32BitsToFloat16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000
  const abs = bits & 0x7fffffff
  if (abs >= 0x7f800000) {
    if (abs === 0x7f800000) return sign | 0x7c00
    return sign | 0x7e00 | ((abs >>> 13) & 0x3ff)
  }
  // 65520 is halfway between 65504 (odd mantissa) and 65536: ties to even gives infinity.
  if (abs >= 0x477ff000) return sign | 0x7c00
  if (abs < 0x38800000) {
    // Below 2^-14: a float16 subnormal, counted in units of 2^-24.
    if (abs < 0x33000000) return sign
    const exponent = abs >>> 23
    const mantissa = (abs & 0x7fffff) | 0x800000
    const shift = 126 - exponent
    let half = mantissa >>> shift
    const rest = mantissa & ((1 << shift) - 1)
    const halfway = 1 << (shift - 1)
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half++
    return sign | half
  }
  let half = (((abs >>> 23) - 112) << 10) | ((abs >>> 13) & 0x3ff)
  const rest = abs & 0x1fff
  // A carry out of the mantissa moves into the exponent, which is the right rounding.
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++
  return sign | half
}
