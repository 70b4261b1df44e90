// GET /health (the process is up) and GET /ready (salt-api accepts us and the last sync worked).
// Neither needs a token: load balancers and orchestrators probe them.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { SyncEngine } from '../sync/engine.js'

const health: FastifyPluginAsyncTypebox<{ engine: SyncEngine }> = async (app, { engine }) => {
  app.get('/health', {
    schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
  }, async () => ({ status: 'ok' as const }))

  app.get('/ready', {
    schema: {
      response: {
        200: Type.Object({ ready: Type.Literal(true) }),
        503: Type.Object({ ready: Type.Literal(false), reason: Type.String() }),
      },
    },
  }, async (_request, reply) => {
    const state = await engine.readiness()
    if (state.ready) return { ready: true as const }
    return await reply.code(503).send({ ready: false as const, reason: state.reason ?? 'not ready' })
  })
}

export default health
