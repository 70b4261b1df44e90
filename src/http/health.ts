// GET /health (the process is up) and GET /ready (salt-api answers and the last sync worked).
// Neither needs a token: load balancers and orchestrators probe them. Without the bearer token
// /ready says only whether and, briefly, why not: error texts and minion ids (which minions
// choose) come with the token. It answers from what saltmasq already knows (salt-api is probed
// in the background), so it is instant even while salt-api hangs.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { ReadinessMonitor } from '../sync/readiness.js'
import { bearerCheck } from './auth.js'
import { MinionStatusSchema } from './schemas.js'

const Detail = Type.Object({
  saltApi: Type.Object({
    reachable: Type.Union([Type.Boolean(), Type.Null()], { description: 'null until the first probe answered' }),
    checkedAt: Type.Union([Type.String(), Type.Null()]),
    error: Type.Optional(Type.String()),
  }),
  lastSync: Type.Union([
    Type.Object({ ok: Type.Boolean(), at: Type.String(), error: Type.Optional(Type.String()) }),
    Type.Null(),
  ]),
  owedApply: Type.Union([Type.Object({ since: Type.String(), paced: Type.Boolean() }), Type.Null()], {
    description: 'files dnsmasq has not been told about yet; paced: only waiting for RELOAD_MIN_INTERVAL_S',
  }),
  eventStream: Type.Optional(
    Type.Object(
      {
        connected: Type.Boolean(),
        disconnectedSince: Type.Union([Type.String(), Type.Null()]),
        lastError: Type.Union([Type.String(), Type.Null()]),
      },
      { description: 'salt-api GET /events, when EVENT_STREAM is on; the whole state is in GET /reservations' },
    ),
  ),
  dnsmasqMinions: Type.Optional(
    Type.Array(MinionStatusSchema, {
      description:
        'DNSMASQ_PUBLISH=salt: each dnsmasq minion; one behind is reported here and in the metrics, and '
        + 'makes saltmasq unready only when none holds the reservations',
    }),
  ),
})

const health: FastifyPluginAsyncTypebox<{ readiness: ReadinessMonitor, token: string }> = async (
  app,
  { readiness, token },
) => {
  const authorized = bearerCheck(token)
  app.get(
    '/health',
    {
      schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
    },
    async () => ({ status: 'ok' as const }),
  )

  app.get(
    '/ready',
    {
      schema: {
        description:
          'Without `Bearer <WEBHOOK_TOKEN>`: ready or not, and briefly why not. With it: the reason in '
          + 'full and the detail.',
        response: {
          200: Type.Object({ ready: Type.Literal(true), detail: Type.Optional(Detail) }),
          503: Type.Object({ ready: Type.Literal(false), reason: Type.String(), detail: Type.Optional(Detail) }),
        },
      },
    },
    async (request, reply) => {
      const report = readiness.report()
      const full = authorized(request.headers.authorization)
      if (report.ready) return full ? { ready: true as const, detail: report.detail } : { ready: true as const }
      const reason = (full ? report.reason : report.brief) ?? 'not ready'
      return await reply
        .code(503)
        .send(full ? { ready: false as const, reason, detail: report.detail } : { ready: false as const, reason })
    },
  )
}

export default health
