// GET /reservations: what saltmasq serves, with the last sync's conflicts and stale entries.
// DELETE /reservations/:minionId: an operator's destroy, for a machine removed outside salt-cloud
// (the one release that does not wait for the key list).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors } from '../errors.js'
import type { EventIntake } from '../events/intake.js'
import type { SaltEventStream } from '../events/salt-event-stream.js'
import type { MinionStatus } from '../store/minion-records.js'
import { listReservations } from '../ledger/ledger.js'
import { hostNameProblem } from '../ledger/validate.js'
import type { Diff } from '../sync/diff.js'
import type { DurableLedger } from '../sync/durable-ledger.js'
import type { SyncScheduler } from '../sync/scheduler.js'
import {
  DiffSchema,
  ErrorReply,
  MinionStatusSchema,
  ReservationSchema,
  StreamStateSchema,
  SyncReplies,
  SyncResultSchema,
  WaitQuery,
} from './schemas.js'

const Counts = Type.Object({
  accepted: Type.Integer(),
  refused: Type.Integer(),
  ignored: Type.Integer(),
  invalid: Type.Integer(),
})

export interface ReservationsOptions {
  scheduler: SyncScheduler
  ledger: DurableLedger
  intake: EventIntake
  stream: SaltEventStream | null
  dryRun: () => Promise<Diff>
  dnsmasqMinions: () => MinionStatus[]
}

const reservations: FastifyPluginAsyncTypebox<ReservationsOptions> = async (
  app,
  { scheduler, ledger, intake, stream, dryRun, dnsmasqMinions },
) => {
  app.get(
    '/reservations',
    {
      schema: {
        response: {
          200: Type.Object({
            reservations: Type.Array(ReservationSchema),
            lastSync: Type.Union([SyncResultSchema, Type.Null()]),
            lastSyncError: Type.Union(
              [
                Type.Object({ at: Type.String(), code: Type.Optional(Type.String()), message: Type.String() }),
                Type.Null(),
              ],
              {
                description: 'set while the last sync failed',
              },
            ),
            events: Type.Object(
              { webhook: Counts, stream: Counts },
              { description: 'events judged since saltmasq started, by source' },
            ),
            eventStream: Type.Union([StreamStateSchema, Type.Null()], { description: 'null when EVENT_STREAM=false' }),
            dnsmasqMinions: Type.Array(MinionStatusSchema, {
              description:
                'DNSMASQ_PUBLISH=salt: each dnsmasq minion, current or behind and since when (empty for local)',
            }),
          }),
          401: ErrorReply,
        },
      },
    },
    async () => {
      const failed = scheduler.lastError
      const code = (failed?.error as { code?: unknown } | undefined)?.code
      return {
        reservations: listReservations(ledger.current),
        lastSync: scheduler.lastResult,
        lastSyncError:
          failed === null
            ? null
            : {
                at: new Date(failed.at).toISOString(),
                message: failed.error.message,
                ...(typeof code === 'string' ? { code } : {}),
              },
        events: intake.counts,
        eventStream: stream?.state ?? null,
        dnsmasqMinions: dnsmasqMinions(),
      }
    },
  )

  app.get(
    '/reservations/diff',
    {
      schema: {
        summary: 'What a sync would change right now: reads the mine and the key list, writes and applies nothing',
        response: { 200: DiffSchema, 401: ErrorReply, 502: ErrorReply, 504: ErrorReply },
      },
    },
    async () => await dryRun(),
  )

  app.delete(
    '/reservations/:minionId',
    {
      schema: {
        params: Type.Object({ minionId: Type.String({ maxLength: 512 }) }),
        querystring: WaitQuery,
        response: { ...SyncReplies, 404: ErrorReply },
      },
    },
    async (request, reply) => {
      const { minionId } = request.params
      const problem = hostNameProblem(minionId)
      if (problem !== null) throw new errors.SALTMASQ_BAD_MINION_ID(minionId, problem)
      if (!ledger.has(minionId)) throw new errors.SALTMASQ_NO_RESERVATION(minionId)
      const run = scheduler.release(minionId)
      if (request.query.wait) return await run
      run.catch(() => undefined)
      return await reply.code(202).send({ accepted: true })
    },
  )
}

export default reservations
