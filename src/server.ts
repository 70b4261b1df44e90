// Process entry: builds the app from the environment, listens, and shuts down gracefully.
import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { buildApp } from './app.js'
import { loggerOptions } from './logger.js'

const logger = pino(loggerOptions(process.env.LOG_LEVEL))

let app
try {
  app = await buildApp({ env: process.env, logger })
} catch (err) {
  logger.fatal({ err }, `saltmasq cannot start: ${(err as Error).message}`)
  process.exit(1)
}

closeWithGrace({ delay: 15_000, logger }, async ({ err }) => {
  if (err !== undefined) logger.error({ err }, 'closing after an unexpected error')
  await app.close()
})

const { host, port } = app.saltmasq.config
await app.listen({ host, port })
