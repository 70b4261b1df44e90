// GET /reservations: what saltmasq serves, with the last sync's conflicts and stale entries.
// DELETE /reservations/:minionId: an operator's destroy, for a machine removed outside salt-cloud.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors } from '../errors.js'
import { ReservationSchema } from '../ledger/reservation.js'
import { hostNameProblem } from '../ledger/validate.js'
import type { DurableLedger } from '../sync/durable-ledger.js'
import { SyncResultSchema } from '../sync/result.js'
import type { SyncScheduler } from '../sync/scheduler.js'
import { ErrorReply, WaitQuery } from './schemas.js'

const reservations: FastifyPluginAsyncTypebox<{ scheduler: SyncScheduler, ledger: DurableLedger }> = async (app, { scheduler, ledger }) => {
  app.get('/reservations', {
    schema: {
      response: {
        200: Type.Object({
          reservations: Type.Array(ReservationSchema),
          lastSync: Type.Union([SyncResultSchema, Type.Null()]),
        }),
        401: ErrorReply,
      },
    },
  }, async () => ({ reservations: [...ledger.current.values()], lastSync: scheduler.lastResult }))

  app.delete('/reservations/:minionId', {
    schema: {
      params: Type.Object({ minionId: Type.String({ maxLength: 512 }) }),
      querystring: WaitQuery,
      response: { 200: SyncResultSchema, 202: Type.Object({ accepted: Type.Literal(true) }), 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 502: ErrorReply, 504: ErrorReply },
    },
  }, async (request, reply) => {
    const { minionId } = request.params
    const problem = hostNameProblem(minionId)
    if (problem !== null) throw new errors.BadMinionId(minionId, problem)
    if (!ledger.has(minionId)) throw new errors.NotFound(minionId)
    const run = scheduler.destroyed(minionId)
    if (request.query.wait) return await run
    run.catch(() => undefined)
    return await reply.code(202).send({ accepted: true })
  })
}

export default reservations
