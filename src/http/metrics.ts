// GET /metrics: Prometheus text format. Open like /health by default (scrapers rarely hold
// secrets, and nothing in it names a secret); with METRICS_TOKEN set it wants that bearer token.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors } from '../errors.js'
import type { Metrics } from '../metrics/metrics.js'
import { bearerCheck } from './auth.js'

const metrics: FastifyPluginAsyncTypebox<{ metrics: Metrics, token: string | null }> = async (app, opts) => {
  const allowed = opts.token === null ? () => true : bearerCheck(opts.token)
  app.get(
    '/metrics',
    {
      schema: {
        description:
          'Prometheus text format (version 0.0.4). Needs `Bearer <METRICS_TOKEN>` when METRICS_TOKEN is set.',
        produces: ['text/plain'],
        response: { 200: Type.String() },
      },
      onRequest: async (request) => {
        if (!allowed(request.headers.authorization)) throw new errors.SALTMASQ_UNAUTHORIZED()
      },
    },
    async (_request, reply) => {
      const text = await opts.metrics.registry.metrics()
      return await reply.type(opts.metrics.registry.contentType).send(text)
    },
  )
}

export default metrics
