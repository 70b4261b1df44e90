// POST /hooks/salt: the Salt reactor's webhook. Takes a salt-cloud created/destroyed event, as
// JSON or url-encoded (Salt's http.query url-encodes dict bodies), to the event intake, which
// judges it as it judges the event stream's.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors } from '../errors.js'
import type { EventIntake } from '../events/intake.js'
import { ErrorReply } from './schemas.js'

const HookBody = Type.Object({
  tag: Type.String({ maxLength: 512, description: 'salt/cloud/<minion id>/created or .../destroyed' }),
  // The minion id comes from the tag; the data only says who fired the event.
  data: Type.Optional(Type.Union([Type.Object({}, { additionalProperties: true }), Type.String({ maxLength: 8192 })])),
})

const Accepted = Type.Object({
  accepted: Type.Literal(true),
  event: Type.Union([Type.Literal('created'), Type.Literal('destroyed')]),
  minionId: Type.String(),
})

const webhook: FastifyPluginAsyncTypebox<{ intake: EventIntake, rateLimit: number }> = async (
  app,
  { intake, rateLimit },
) => {
  app.post(
    '/hooks/salt',
    {
      config: { rateLimit: { max: rateLimit, timeWindow: 60_000 } },
      schema: {
        body: HookBody,
        response: { 202: Accepted, 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 415: ErrorReply },
      },
    },
    async (request, reply) => {
      const { tag, data } = request.body
      // Only salt-cloud's events come this way (the intake also takes salt/key from the stream).
      if (!tag.startsWith('salt/cloud/')) throw new errors.SALTMASQ_BAD_TAG(tag)
      const taken = intake.take('webhook', tag, data)
      switch (taken.outcome) {
        case 'invalid':
          throw new errors.SALTMASQ_BAD_MINION_ID(taken.minionId, taken.reason)
        case 'refused':
          throw new errors.SALTMASQ_EVENT_FROM_MINION(taken.reason)
        case 'ignored':
          throw new errors.SALTMASQ_BAD_TAG(tag)
      }
      // The sync reports its own outcome in the log and on /ready; the reactor only needs to know
      // the event was taken.
      return await reply
        .code(202)
        .send({ accepted: true, event: taken.kind as 'created' | 'destroyed', minionId: taken.minionId })
    },
  )
}

export default webhook
