import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { publicJsonSchema, publicJsonSchemaText } from '../../src/shared/public/jsonSchema'
import { PUBLIC_METADATA_KEYS, PUBLIC_ROW_KEYS } from '../../src/shared/public/lensFrame'

describe('docs/public-schema.json', () => {
  it('is current (regenerate with npm run gen:schema)', () => {
    const file = resolve(__dirname, '../../docs/public-schema.json')
    expect(readFileSync(file, 'utf8')).toBe(publicJsonSchemaText())
  })

  it('requires every public row and metadata key, and no other', () => {
    const defs = publicJsonSchema().$defs as Record<
      string,
      { required: string[]; additionalProperties: boolean }
    >
    expect(defs.Row!.required).toEqual(PUBLIC_ROW_KEYS)
    expect(defs.Row!.additionalProperties).toBe(false)
    expect(defs.Metadata!.required).toEqual(PUBLIC_METADATA_KEYS)
    expect(JSON.stringify(defs.LensFrame)).toContain('"$ref":"#/$defs/Row"')
  })
})
