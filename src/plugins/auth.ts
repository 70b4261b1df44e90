// Who may call the routes that change or reveal reservations. Decorates the instance with
// `requireAuth`, a preHandler routes opt into: a Bearer token (WEBHOOK_TOKEN, what the Salt
// reactor sends), or, when WEBHOOK_HMAC_SECRET is set, a Standard Webhooks signature over the
// raw body, for callers that can sign. Comparisons are constant-time; replayed ids are refused.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { errors } from '../errors.js'
import { signatureProblem, TOLERANCE_S } from './signature.js'

declare module 'fastify' {
  interface FastifyInstance {
    requireAuth: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
  interface FastifyRequest {
    /** The JSON body as received, kept for signature checks. */
    rawBody?: string
  }
}

export interface AuthOptions {
  token: string
  hmacSecret: Buffer | null
  now?: () => number
}

function digest (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/** Signature ids seen within the tolerance window, bounded so a flood cannot grow it without end. */
const MAX_SEEN_IDS = 100_000

export default fp<AuthOptions>(async (app, opts) => {
  const expected = digest(opts.token)
  const now = opts.now ?? Date.now
  const seen = new Map<string, number>()

  if (opts.hmacSecret !== null) {
    // Signatures cover the raw bytes: keep them beside the parsed body (only when needed).
    const defaultJson = app.getDefaultJsonParser('error', 'error')
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      request.rawBody = body as string
      defaultJson(request, body as string, done)
    })
  }

  function checkSignature (request: FastifyRequest, key: Buffer): void {
    const header = (name: string) => {
      const value = request.headers[name]
      return Array.isArray(value) ? value[0] : value
    }
    const id = header('webhook-id')
    const problem = signatureProblem({ id, timestamp: header('webhook-timestamp'), signature: header('webhook-signature') }, request.rawBody ?? '', key, Math.floor(now() / 1000))
    if (problem !== null) throw new errors.BadSignature(problem)
    const nowMs = now()
    // Insertion order is expiry order: drop from the front what has expired (or overflows).
    for (const [seenId, expires] of seen) {
      if (expires > nowMs && seen.size < MAX_SEEN_IDS) break
      seen.delete(seenId)
    }
    if (seen.has(id!)) throw new errors.BadSignature(`webhook-id '${id}' was already used`)
    seen.set(id!, nowMs + 2 * TOLERANCE_S * 1000)
  }

  app.decorate('requireAuth', async (request: FastifyRequest) => {
    if (opts.hmacSecret !== null && request.headers['webhook-signature'] !== undefined) {
      checkSignature(request, opts.hmacSecret)
      return
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')
    // Hashing first makes the comparison length-independent as well as constant-time.
    if (match === null || !timingSafeEqual(digest(match[1]!), expected)) throw new errors.Unauthorized()
  })
}, { name: 'saltmasq-auth', fastify: '5.x' })
