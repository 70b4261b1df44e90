// Who may call the routes that change or reveal reservations. Registered inside the protected
// scope, it authenticates before anything else runs there, so a caller without a token learns
// nothing (no body is parsed or validated for it):
// - a Bearer token (WEBHOOK_TOKEN, what the Salt reactor sends) is checked in `onRequest`;
// - a Standard Webhooks signature (when WEBHOOK_HMAC_SECRET is set) covers the raw body, so it
//   is checked in `preParsing`, on the bytes as received, before any content-type parser runs.
// Comparisons are constant-time; replayed signature ids are refused.
import { createHash, timingSafeEqual } from 'node:crypto'
import { Readable } from 'node:stream'
import { errorCodes, type FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { errors } from '../errors.js'
import { signatureProblem, TOLERANCE_S } from './signature.js'

export interface AuthOptions {
  token: string
  hmacSecret: Buffer | null
  /** The most body bytes read for a signature check (the server's bodyLimit). */
  bodyLimit: number
  now?: () => number
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set in onRequest: the request carries a webhook signature, checked on its raw body. */
    signed?: boolean
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/** Signature ids seen within the tolerance window, bounded so a flood cannot grow it without end. */
const MAX_SEEN_IDS = 100_000

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name]
  return Array.isArray(value) ? value[0] : value
}

async function readRaw(stream: NodeJS.ReadableStream, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    size += buf.length
    if (size > limit) throw new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE()
    chunks.push(buf)
  }
  return Buffer.concat(chunks)
}

/** A constant-time check of an Authorization header against `Bearer <token>`. */
export function bearerCheck(token: string): (authorization: string | undefined) => boolean {
  const expected = digest(token)
  // Hashing first makes the comparison length-independent as well as constant-time.
  return (authorization) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')
    return match !== null && timingSafeEqual(digest(match[1]!), expected)
  }
}

export default fp<AuthOptions>(
  async (app, opts) => {
    const bearerOk = bearerCheck(opts.token)
    const now = opts.now ?? Date.now
    const seen = new Map<string, number>()

    function checkSignature(request: FastifyRequest, key: Buffer, rawBody: string): void {
      const id = header(request, 'webhook-id')
      const problem = signatureProblem(
        { id, timestamp: header(request, 'webhook-timestamp'), signature: header(request, 'webhook-signature') },
        rawBody,
        key,
        Math.floor(now() / 1000),
      )
      if (problem !== null) throw new errors.SALTMASQ_BAD_SIGNATURE(problem)
      const nowMs = now()
      // Insertion order is expiry order: drop from the front what has expired (or overflows).
      for (const [seenId, expires] of seen) {
        if (expires > nowMs && seen.size < MAX_SEEN_IDS) break
        seen.delete(seenId)
      }
      if (seen.has(id!)) throw new errors.SALTMASQ_BAD_SIGNATURE(`webhook-id '${id}' was already used`)
      seen.set(id!, nowMs + 2 * TOLERANCE_S * 1000)
    }

    // Every route of the protected scope says so in the OpenAPI document.
    app.addHook('onRoute', (route) => {
      route.schema = { ...route.schema, security: [{ bearer: [] }] }
    })

    app.addHook('onRequest', async (request) => {
      if (opts.hmacSecret !== null && request.headers['webhook-signature'] !== undefined) {
        request.signed = true
        return
      }
      if (!bearerOk(request.headers.authorization)) throw new errors.SALTMASQ_UNAUTHORIZED()
    })

    if (opts.hmacSecret !== null) {
      const key = opts.hmacSecret
      app.addHook('preParsing', async (request, _reply, payload) => {
        if (request.signed !== true) return payload
        const raw = await readRaw(payload, opts.bodyLimit)
        checkSignature(request, key, raw.toString('utf8'))
        // The parsers read the same bytes the signature covered.
        return Readable.from([raw])
      })
    }
  },
  { name: 'saltmasq-auth', fastify: '5.x' },
)
