// Bearer-token check for every route that changes or reveals reservations. Decorates the
// instance with `requireToken`, a preHandler routes opt into. Comparison is constant-time.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { errors } from '../errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    requireToken: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

function digest (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

export default fp<{ token: string }>(async (app, opts) => {
  const expected = digest(opts.token)
  app.decorate('requireToken', async (request: FastifyRequest) => {
    const header = request.headers.authorization ?? ''
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
    // Hashing first makes the comparison length-independent as well as constant-time.
    if (match === null || !timingSafeEqual(digest(match[1]!), expected)) throw new errors.Unauthorized()
  })
}, { name: 'saltmasq-auth', fastify: '5.x' })
