// The application: validates the environment, wires the salt-api client, the sync engine and
// the routes, and returns the Fastify instance (tests drive it with app.inject, server.ts
// listens). Data path: route → sync engine → salt-api client / ledger / renderer → store.
import { readFile } from 'node:fs/promises'
import { STATUS_CODES } from 'node:http'
import fastifyEnv from '@fastify/env'
import formbody from '@fastify/formbody'
import rateLimit from '@fastify/rate-limit'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyError } from 'fastify'
import { pino, type Logger } from 'pino'
import type { Dispatcher } from 'undici'
import { envSchema, toConfig, type Config, type Env } from './config.js'
import { loggerOptions } from './logger.js'
import auth from './plugins/auth.js'
import health from './routes/health.js'
import hooks from './routes/hooks.js'
import reservations from './routes/reservations.js'
import resync from './routes/resync.js'
import { SaltClient } from './salt/client.js'
import { SyncEngine } from './sync/engine.js'

export interface BuildOptions {
  /** Raw environment variables (process.env in production). */
  env: Record<string, string | undefined>
  logger?: Logger
  /** undici dispatcher for salt-api; tests may pass a MockAgent. */
  dispatcher?: Dispatcher
  now?: () => Date
}

declare module 'fastify' {
  interface FastifyInstance {
    saltmasq: { config: Config, engine: SyncEngine }
  }
}

export async function buildApp (opts: BuildOptions) {
  const app = Fastify({
    loggerInstance: opts.logger ?? pino(loggerOptions(opts.env.LOG_LEVEL)),
    bodyLimit: 64 * 1024,
    connectionTimeout: 30_000,
    requestTimeout: 120_000,
    keepAliveTimeout: 5_000,
  }).withTypeProvider<TypeBoxTypeProvider>()

  await app.register(fastifyEnv, { schema: envSchema, data: opts.env, env: false, dotenv: false })
  const config = toConfig(app.getEnvs<Env>())
  app.log.level = config.logLevel

  const client = new SaltClient({
    ...config.salt,
    ...(config.salt.caFile === undefined ? {} : { ca: await readFile(config.salt.caFile, 'utf8') }),
    logger: app.log,
    ...(opts.dispatcher === undefined ? {} : { dispatcher: opts.dispatcher }),
  })
  const engine = await SyncEngine.open({ config, client, logger: app.log, ...(opts.now === undefined ? {} : { now: opts.now }) })
  app.decorate('saltmasq', { config, engine })
  engine.startReconcile(config.reconcileIntervalMs)
  app.addHook('onClose', async () => {
    await engine.close()
    await client.close()
  })
  if (config.salt.insecure) app.log.warn('SALT_API_INSECURE=true: salt-api\'s TLS certificate is not verified')

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const statusCode = err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500
    const error = STATUS_CODES[statusCode] ?? 'Error'
    if (statusCode < 500) {
      return reply.code(statusCode).send({ statusCode, code: err.code, error, message: err.message })
    }
    request.log.error({ err, method: request.method, url: request.url }, 'request failed')
    // Our own upstream errors (salt-api down, apply failed) say what to fix; anything else stays opaque.
    const ours = typeof err.code === 'string' && err.code.startsWith('SALTMASQ_') && statusCode !== 500
    return reply.code(statusCode).send(ours
      ? { statusCode, code: err.code, error, message: err.message }
      : { statusCode, error, message: 'Internal Server Error' })
  })

  await app.register(formbody)
  await app.register(rateLimit, { global: false })
  await app.register(auth, { token: config.webhook.token, hmacSecret: config.webhook.hmacSecret })
  await app.register(health, { engine })
  await app.register(hooks, { engine, rateLimit: config.webhook.hookRateLimit })
  await app.register(resync, { engine, rateLimit: config.webhook.resyncRateLimit })
  await app.register(reservations, { engine })
  return app
}

export type SaltmasqApp = Awaited<ReturnType<typeof buildApp>>
