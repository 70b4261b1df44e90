// GET /reservations: what saltmasq serves, with the last sync's conflicts and stale entries.
// DELETE /reservations/:minionId: an operator's destroy, for a machine removed outside salt-cloud.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors } from '../errors.js'
import { minionIdProblem } from '../reservations/validate.js'
import type { SyncEngine } from '../sync/engine.js'
import { ErrorReply, Reservations, SyncResultSchema, WaitQuery } from './schemas.js'

const reservations: FastifyPluginAsyncTypebox<{ engine: SyncEngine }> = async (app, { engine }) => {
  app.get('/reservations', {
    preHandler: app.requireAuth,
    schema: {
      response: {
        200: Type.Object({
          reservations: Reservations,
          lastSync: Type.Union([SyncResultSchema, Type.Null()]),
        }),
        401: ErrorReply,
      },
    },
  }, async () => ({ reservations: engine.reservations, lastSync: engine.lastResult }))

  app.delete('/reservations/:minionId', {
    preHandler: app.requireAuth,
    schema: {
      params: Type.Object({ minionId: Type.String({ maxLength: 512 }) }),
      querystring: WaitQuery,
      response: { 200: SyncResultSchema, 202: Type.Object({ accepted: Type.Literal(true) }), 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 502: ErrorReply, 504: ErrorReply },
    },
  }, async (request, reply) => {
    const { minionId } = request.params
    const problem = minionIdProblem(minionId)
    if (problem !== null) throw new errors.BadMinionId(minionId, problem)
    if (!engine.has(minionId)) throw new errors.NotFound(minionId)
    const run = engine.destroyed(minionId)
    if (request.query.wait) return await run
    run.catch(() => undefined)
    return await reply.code(202).send({ accepted: true })
  })
}

export default reservations
