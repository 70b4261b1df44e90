// POST /hooks/salt: the Salt reactor's webhook. Accepts a salt-cloud created/destroyed event,
// as JSON or url-encoded (Salt's http.query url-encodes dict bodies), and schedules a sync.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors } from '../errors.js'
import { minionIdProblem } from '../reservations/validate.js'
import type { SyncEngine } from '../sync/engine.js'
import { ErrorReply } from './schemas.js'

const TAG = /^salt\/cloud\/([^/]+)\/(created|destroyed)$/

const HookBody = Type.Object({
  tag: Type.String({ maxLength: 512, description: 'salt/cloud/<minion id>/created or .../destroyed' }),
  // The event data is informative only: the minion id comes from the tag.
  data: Type.Optional(Type.Union([Type.Object({}, { additionalProperties: true }), Type.String({ maxLength: 8192 })])),
})

const Accepted = Type.Object({
  accepted: Type.Literal(true),
  event: Type.Union([Type.Literal('created'), Type.Literal('destroyed')]),
  minionId: Type.String(),
})

const hooks: FastifyPluginAsyncTypebox<{ engine: SyncEngine, rateLimit: number }> = async (app, { engine, rateLimit }) => {
  app.post('/hooks/salt', {
    preHandler: app.requireAuth,
    config: { rateLimit: { max: rateLimit, timeWindow: 60_000 } },
    schema: {
      body: HookBody,
      response: { 202: Accepted, 400: ErrorReply, 401: ErrorReply, 415: ErrorReply },
    },
  }, async (request, reply) => {
    const match = TAG.exec(request.body.tag)
    if (match === null) throw new errors.BadTag(request.body.tag)
    const minionId = match[1]!
    const event = match[2] as 'created' | 'destroyed'
    const problem = minionIdProblem(minionId)
    if (problem !== null) throw new errors.BadMinionId(minionId, problem)

    // The sync reports its own outcome in the log and on /ready; the reactor only needs to know
    // the event was taken.
    const run = event === 'created' ? engine.created(minionId) : engine.destroyed(minionId)
    run?.catch(() => undefined)
    request.log.info({ event, minionId }, 'salt-cloud event accepted')
    return await reply.code(202).send({ accepted: true, event, minionId })
  })
}

export default hooks
