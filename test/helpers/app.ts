// saltmasq built with app.inject in mind, salt-api faked on undici's MockAgent, files in a
// temporary directory that goes with the test.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { pino } from 'pino'
import { fileEnv } from './file-env.js'
import { buildApp } from '../../src/app.js'
import { SaltApiStandIn, STANDIN_URL } from '../../lab/salt-api-standin.js'

export const TOKEN = 'unit-test-webhook-token-0123456789abcdef'
export const auth = { authorization: `Bearer ${TOKEN}` }

export async function setup(t: Test, env: Record<string, string | undefined> = {}, logger = pino({ level: 'silent' })) {
  const dir = await mkdtemp(join(tmpdir(), 'smq-app-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const fake = new SaltApiStandIn()
  const app = await buildApp({
    env: {
      SALT_API_URL: STANDIN_URL,
      SALT_API_USER: 'saltmasq',
      SALT_API_PASSWORD: 'salt-secret',
      WEBHOOK_TOKEN: TOKEN,
      MANAGED_SUBNETS: '10.0.0.0/16',
      RESERVATIONS_FORMAT: 'conf',
      ...fileEnv(dir),
      DNSMASQ_MINION: 'dns',
      LOG_LEVEL: 'silent',
      // The event stream has tests of its own (event-stream.test.ts): MockAgent cannot stream.
      EVENT_STREAM: 'false',
      ...env,
    },
    logger,
    dispatcher: fake.mockAgent(),
  })
  t.teardown(async () => { await app.close() })
  return { app, fake, dir }
}
