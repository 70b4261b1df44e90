// GET /health (the process is up) and GET /ready (salt-api answers and the last sync worked).
// Neither needs a token: load balancers and orchestrators probe them. /ready answers from what
// saltmasq already knows (salt-api is probed in the background), so it is instant even while
// salt-api hangs.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { MinionStatusSchema } from '../dnsmasq/minion-records.js'
import type { ReadinessMonitor } from '../sync/readiness.js'

const Detail = Type.Object({
  saltApi: Type.Object({
    reachable: Type.Union([Type.Boolean(), Type.Null()], { description: 'null until the first probe answered' }),
    checkedAt: Type.Union([Type.String(), Type.Null()]),
    error: Type.Optional(Type.String()),
  }),
  lastSync: Type.Union([Type.Object({ ok: Type.Boolean(), at: Type.String(), error: Type.Optional(Type.String()) }), Type.Null()]),
  owedApply: Type.Union([Type.Object({ since: Type.String(), paced: Type.Boolean() }), Type.Null()], {
    description: 'files dnsmasq has not been told about yet; paced: only waiting for RELOAD_MIN_INTERVAL_S',
  }),
  eventStream: Type.Optional(Type.Object({
    connected: Type.Boolean(),
    disconnectedSince: Type.Union([Type.String(), Type.Null()]),
    lastError: Type.Union([Type.String(), Type.Null()]),
  }, { description: 'salt-api GET /events, when EVENT_STREAM is on; the whole state is in GET /reservations' })),
  dnsmasqMinions: Type.Optional(Type.Array(MinionStatusSchema, {
    description: 'DNSMASQ_PUBLISH=salt: each dnsmasq minion; one behind is reported here and in the metrics, and makes saltmasq unready only when none holds the reservations',
  })),
})

const health: FastifyPluginAsyncTypebox<{ readiness: ReadinessMonitor }> = async (app, { readiness }) => {
  app.get('/health', {
    schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
  }, async () => ({ status: 'ok' as const }))

  app.get('/ready', {
    schema: {
      response: {
        200: Type.Object({ ready: Type.Literal(true), detail: Detail }),
        503: Type.Object({ ready: Type.Literal(false), reason: Type.String(), detail: Detail }),
      },
    },
  }, async (_request, reply) => {
    const report = readiness.report()
    if (report.ready) return { ready: true as const, detail: report.detail }
    return await reply.code(503).send({ ready: false as const, reason: report.reason ?? 'not ready', detail: report.detail })
  })
}

export default health
