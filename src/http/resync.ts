// POST /resync: a full sync on demand (curl, cron). With ?wait=true the answer is the sync's
// result; otherwise 202 at once.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { SyncScheduler } from '../sync/scheduler.js'
import { SyncReplies, WaitQuery } from './schemas.js'

const resync: FastifyPluginAsyncTypebox<{ scheduler: SyncScheduler, rateLimit: number }> = async (
  app,
  { scheduler, rateLimit },
) => {
  app.post(
    '/resync',
    {
      config: { rateLimit: { max: rateLimit, timeWindow: 60_000 } },
      schema: {
        querystring: WaitQuery,
        response: SyncReplies,
      },
    },
    async (request, reply) => {
      const run = scheduler.sync()
      if (request.query.wait) return await run
      run.catch(() => undefined)
      return await reply.code(202).send({ accepted: true })
    },
  )
}

export default resync
