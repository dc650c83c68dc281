/**
 * camelCase (inside the app) ↔ snake_case (every surface read outside it: files, the command
 * line's JSON, the API), deeply.
 */

export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
}

export function camelCase(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase())
}

/** Deeply renames object keys (arrays and nested objects included); other values pass through. */
export function renameKeysDeep(value: unknown, rename: (key: string) => string): unknown {
  if (Array.isArray(value)) return value.map((v) => renameKeysDeep(v, rename))
  if (value === null || typeof value !== 'object') return value
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value)) out[rename(key)] = renameKeysDeep(v, rename)
  return out
}
