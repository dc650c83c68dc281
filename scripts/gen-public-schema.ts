/** Writes docs/public-schema.json from the zod schemas in src/shared/public. */
import { writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { publicJsonSchemaText } from '../src/shared/public/jsonSchema'

const file = resolve(__dirname, '../docs/public-schema.json')
writeFileSync(file, publicJsonSchemaText())
console.log(`wrote ${file}`)
