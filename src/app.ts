// The application: validates the environment, wires the data path, and returns the Fastify
// instance (tests drive it with app.inject, server.ts listens). The data path, one folder each:
// http/ (routes) → sync/ (scheduler → pass) → salt/ (client, mine) · ledger/ (pure rules) →
// dnsmasq/ (formats, publisher) → store/ (atomic files).
import { STATUS_CODES } from 'node:http'
import { readFile } from 'node:fs/promises'
import fastifyEnv from '@fastify/env'
import formbody from '@fastify/formbody'
import rateLimit from '@fastify/rate-limit'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { LogController, type FastifyError } from 'fastify'
import { pino, type Logger } from 'pino'
import type { Dispatcher } from 'undici'
import { envSchema, toConfig, type Config, type Env } from './config/index.js'
import { errors } from './errors.js'
import { EventIntake } from './events/intake.js'
import { SaltEventStream } from './events/salt-event-stream.js'
import auth from './http/auth.js'
import health from './http/health.js'
import metricsRoute from './http/metrics.js'
import openapi from './http/openapi.js'
import reservations from './http/reservations.js'
import resync from './http/resync.js'
import webhook from './http/webhook.js'
import { loggerOptions } from './logger.js'
import { Metrics } from './metrics/metrics.js'
import { SaltClient } from './salt/client.js'
import { openSyncService, type SyncService } from './sync/service.js'
import { systemClock, type Clock } from './util/clock.js'
import { saltmasqVersion } from './util/version.js'

export type BuildOptions = BuildCommon &
  /** Raw environment variables, checked here (@fastify/env). */
  (
    | { env: Record<string, string | undefined>, config?: never }
    /** A configuration the caller already checked (the process entry, for its own error lines). */
    | { config: Config, env?: never }
  )

interface BuildCommon {
  logger?: Logger
  /** undici dispatcher for salt-api; tests may pass a MockAgent. */
  dispatcher?: Dispatcher
  clock?: Clock
}

/** What the tests and the benchmarks reach through `app.saltmasq`. */
export type Saltmasq = Omit<SyncService, 'start' | 'close' | 'dryRun'> & {
  config: Config
  intake: EventIntake
  stream: SaltEventStream | null
  metrics: Metrics
}

declare module 'fastify' {
  interface FastifyInstance {
    saltmasq: Saltmasq
  }
}

const BODY_LIMIT = 64 * 1024

async function readCa(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    throw new errors.SALTMASQ_BAD_CONFIG(
      'SALT_API_CA_FILE',
      `cannot read ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    )
  }
}

export async function buildApp(opts: BuildOptions) {
  const app = Fastify({
    loggerInstance: opts.logger ?? pino(loggerOptions(opts.config?.logLevel ?? opts.env?.LOG_LEVEL)),
    bodyLimit: BODY_LIMIT,
    connectionTimeout: 30_000,
    requestTimeout: 120_000,
    keepAliveTimeout: 5_000,
    // Probes come every few seconds: one debug line per request, not Fastify's two at info.
    logController: new LogController({ disableRequestLogging: true }),
  }).withTypeProvider<TypeBoxTypeProvider>()
  app.addHook('onResponse', async (request, reply) => {
    request.log.debug(
      { method: request.method, url: request.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'request',
    )
  })

  let config: Config
  if (opts.config === undefined) {
    await app.register(fastifyEnv, { schema: envSchema, data: opts.env, env: false, dotenv: false })
    config = toConfig(app.getEnvs<Env>())
  } else {
    config = opts.config
  }
  app.log.level = config.logLevel
  const clock = opts.clock ?? systemClock
  const logger = app.log
  const metrics = new Metrics()

  const client = new SaltClient({
    ...config.salt,
    ...(config.salt.caFile === undefined ? {} : { ca: await readCa(config.salt.caFile) }),
    logger,
    now: clock,
    onCall: metrics.saltCall,
    ...(opts.dispatcher === undefined ? {} : { dispatcher: opts.dispatcher }),
  })
  const sync = await openSyncService({ config, client, logger, clock })
  const { scheduler, keys, ledger, publisher, readiness } = sync
  // Events in: the reactor's webhook (a route below) and salt-api's event stream, judged alike.
  const intake = new EventIntake(scheduler, config.events.cloudEventMinions, logger, metrics.event)
  const stream = config.events.stream
    ? new SaltEventStream({
      client,
      dispatcher: client.openStreamConnection(),
      intake,
      resync: () => {
        scheduler.sync().catch(() => undefined)
      },
      maxAgeMs: config.events.streamMaxAgeMs,
      timeoutMs: config.salt.timeoutMs,
      clock,
      logger,
    })
    : null
  if (stream !== null) readiness.watchStream(() => stream.state)
  scheduler.onSync(metrics.syncSucceeded)
  scheduler.onSyncFailed(metrics.syncFailed)
  metrics.observe({
    ledger: () => ledger.current,
    lastResult: () => scheduler.lastResult,
    backlog: () => scheduler.backlog,
    owedApplySince: () => publisher.owed?.since ?? null,
    dnsmasqMinions: () => publisher.dnsmasqMinions,
    stream: stream === null ? null : () => stream.state,
    hints: () => ({
      destroyUnconfirmed: scheduler.unconfirmedDestroys,
      createdWithoutKey: scheduler.counts.createdWithoutKey,
      dropped: scheduler.counts.dropped,
      keyListsHeld: keys.heldReads,
    }),
  })
  app.decorate('saltmasq', { config, scheduler, keys, ledger, publisher, readiness, intake, stream, metrics })
  sync.start()
  stream?.start()
  app.addHook('onClose', async () => {
    await stream?.stop()
    await sync.close()
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
    // saltmasq's own errors (salt-api down, apply failed, a file it cannot write) say what to
    // fix and carry no secret; anything else stays opaque.
    const ours = typeof err.code === 'string' && err.code.startsWith('SALTMASQ_')
    return reply
      .code(statusCode)
      .send(
        ours
          ? { statusCode, code: err.code, error, message: err.message }
          : { statusCode, error, message: 'Internal Server Error' },
      )
  })

  await app.register(openapi, { version: await saltmasqVersion() })
  await app.register(formbody)
  await app.register(rateLimit, { global: false })
  await app.register(health, { readiness, token: config.webhook.token })
  await app.register(metricsRoute, { metrics, token: config.metricsToken })
  // Open metrics name no minion: the dnsmasq minions' gauge is per minion only behind METRICS_TOKEN.
  metrics.namesMinions = config.metricsToken !== null
  // Everything that changes or reveals reservations: authenticated before anything else runs.
  await app.register(async (scope) => {
    await scope.register(auth, {
      token: config.webhook.token,
      hmacSecret: config.webhook.hmacSecret,
      bodyLimit: BODY_LIMIT,
    })
    await scope.register(webhook, { intake, rateLimit: config.webhook.hookRateLimit })
    await scope.register(resync, { scheduler, rateLimit: config.webhook.resyncRateLimit })
    await scope.register(reservations, {
      scheduler,
      ledger,
      intake,
      stream,
      dryRun: sync.dryRun,
      dnsmasqMinions: () => publisher.dnsmasqMinions,
    })
  })
  return app
}

export type SaltmasqApp = Awaited<ReturnType<typeof buildApp>>
