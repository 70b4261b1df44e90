// POST /hooks/salt: the Salt reactor's webhook. Accepts a salt-cloud created/destroyed event,
// as JSON or url-encoded (Salt's http.query url-encodes dict bodies), and schedules a sync.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors } from '../errors.js'
import { parseCloudEventTag } from '../events/cloud-event.js'
import type { SyncScheduler } from '../sync/scheduler.js'
import { ErrorReply } from './schemas.js'

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

const webhook: FastifyPluginAsyncTypebox<{ scheduler: SyncScheduler, rateLimit: number }> = async (app, { scheduler, rateLimit }) => {
  app.post('/hooks/salt', {
    config: { rateLimit: { max: rateLimit, timeWindow: 60_000 } },
    schema: {
      body: HookBody,
      response: { 202: Accepted, 400: ErrorReply, 401: ErrorReply, 415: ErrorReply },
    },
  }, async (request, reply) => {
    const parsed = parseCloudEventTag(request.body.tag)
    if ('problem' in parsed) {
      if (parsed.problem === 'bad-minion-id') throw new errors.BadMinionId(parsed.minionId, parsed.reason)
      throw new errors.BadTag(request.body.tag)
    }
    const { kind, minionId } = parsed.event
    // The sync reports its own outcome in the log and on /ready; the reactor only needs to know
    // the event was taken.
    const run = kind === 'created' ? scheduler.created(minionId) : scheduler.destroyed(minionId)
    run?.catch(() => undefined)
    request.log.info({ event: kind, minionId }, 'salt-cloud event accepted')
    return await reply.code(202).send({ accepted: true, event: kind, minionId })
  })
}

export default webhook
