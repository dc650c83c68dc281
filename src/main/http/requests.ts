/**
 * Reading a request, the same way for every route of the server: headers, the bearer token, a
 * size-limited body.
 */
import { timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

export function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/** Accepts any of `tokens`, compared in constant time (lengths leak, contents do not). */
export function tokenMatches(candidate: string | undefined, tokens: readonly string[]): boolean {
  if (!candidate) return false
  const given = Buffer.from(candidate)
  let ok = false
  for (const token of tokens) {
    const expected = Buffer.from(token)
    if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true
  }
  return ok
}

export function bearerToken(req: IncomingMessage): string | undefined {
  const auth = firstHeader(req.headers.authorization)
  const m = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null
  return m ? m[1] : undefined
}

/** The body was larger than the route accepts. */
export class BodyTooLarge extends Error {}

export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(firstHeader(req.headers['content-length']) ?? NaN)
  if (Number.isFinite(declared) && declared > maxBytes) throw new BodyTooLarge()
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > maxBytes) throw new BodyTooLarge()
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}
