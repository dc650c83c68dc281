/**
 * manifest.json schema 2, and schema 1 manifests read as their schema 2 equivalent (old bundles
 * keep loading); other versions are refused with a message that says to re-import.
 */
import { describe, expect, it } from 'vitest'
import { ManifestSchema, SCHEMA_VERSION } from './manifest'

const v1 = {
  schemaVersion: 1,
  group: { id: 'g', name: 'G' },
  tokenizer: {},
  conventions: {
    bosTokenId: 1,
    nullTokenId: 0,
    dtype: 'float32',
    activationSite: 'residual_after_block',
    logitSoftcap: null
  },
  base: {
    id: 'base',
    file: 'base.onnx',
    hiddenSize: 64,
    layers: 2,
    heads: 4,
    vocabSize: 100,
    maxPositions: 128
  },
  lenses: ['lenses/a']
}

describe('ManifestSchema', () => {
  it('reads a schema 1 manifest as the pre-norm GPT with no softcap, in schema 2', () => {
    const m = ManifestSchema.parse(v1)
    expect(m.schemaVersion).toBe(SCHEMA_VERSION)
    expect(m.base).toEqual({
      ...v1.base,
      embeddingScale: 1,
      architecture: 'prenorm-gpt',
      kvHeads: 4,
      headDim: 16,
      graphDtype: 'float32',
      logitSoftcap: { decode: null, kl: null, logitLens: null, generate: null }
    })
    expect(m.conventions).not.toHaveProperty('logitSoftcap')
  })

  it('reads schema 2 with per-role softcaps and the graph description', () => {
    const base = {
      ...v1.base,
      architecture: 'gemma2',
      kvHeads: 2,
      headDim: 32,
      graphDtype: 'float32',
      embeddingScale: 8,
      logitSoftcap: { decode: null, kl: 30, logitLens: 30, generate: 30 }
    }
    const { logitSoftcap: _drop, ...conventions } = v1.conventions
    void _drop
    const m = ManifestSchema.parse({ ...v1, schemaVersion: 2, conventions, base })
    expect(m.base).toEqual(base)
  })

  it('refuses a softcap on the decode role and a schema 2 model without its description', () => {
    const { logitSoftcap: _drop, ...conventions } = v1.conventions
    void _drop
    const v2 = { ...v1, schemaVersion: 2, conventions }
    expect(ManifestSchema.safeParse(v2).success).toBe(false)
    const capped = {
      ...v1.base,
      architecture: 'gemma2',
      kvHeads: 2,
      headDim: 32,
      graphDtype: 'float32',
      logitSoftcap: { decode: 30, kl: 30, logitLens: 30, generate: 30 }
    }
    expect(ManifestSchema.safeParse({ ...v2, base: capped }).success).toBe(false)
  })

  it('refuses other versions, saying which load and to re-import', () => {
    const r = ManifestSchema.safeParse({ ...v1, schemaVersion: 3 })
    expect(r.success).toBe(false)
    expect(r.error!.issues[0]!.message).toBe(
      'unsupported schema version 3 (this Workbench reads 1 and 2); re-import the model with this version'
    )
  })
})
