import t from 'tap'
import { MockAgent } from 'undici'
import { pino } from 'pino'
import { SaltClient } from '../../src/salt/client.js'
import { SaltApiStandIn, STANDIN_URL as SALT_URL } from '../../lab/salt-api-standin.js'

const logger = pino({ level: 'silent' })

function client(dispatcher: MockAgent, password = 'salt-secret', timeoutMs = 2000, retries = 0) {
  return new SaltClient({ url: SALT_URL, username: 'saltmasq', password, eauth: 'pam', timeoutMs, logger, dispatcher, retries, retryBaseMs: 1 })
}

/** The stand-in, with `faults` answering POST / before it does. */
function agentWith(faults: (pool: ReturnType<MockAgent['get']>) => void): MockAgent {
  return new SaltApiStandIn().mockAgent(faults)
}

function fakeSaltApi() {
  const api = new SaltApiStandIn()
  return Object.assign(api, { agent: api.mockAgent() })
}

t.test('logs in once, reuses the token, reads the mine through the runner client', async (t) => {
  const fake = fakeSaltApi()
  fake.mine = { web01: ['10.0.0.5'] }
  const c = client(fake.agent)
  t.same(await c.mineGet('*', 'network.ip_addrs'), { web01: ['10.0.0.5'] })
  await c.mineGet('*', 'network.ip_addrs')
  t.equal(fake.logins, 1)
  t.same(fake.calls[1]?.body, [{ client: 'runner', fun: 'mine.get', arg: ['*', 'network.ip_addrs'] }])
  t.same((fake.calls[0]?.body as Record<string, unknown>).eauth, 'pam')
})

t.test('a 401 on a call (salt-api restarted) logs in again once and retries', async (t) => {
  const fake = fakeSaltApi()
  const c = client(fake.agent)
  await c.probe()
  fake.validTokens.clear()
  await c.probe()
  t.equal(fake.logins, 2)
})

t.test('a 401 even after a fresh login is a permission problem, named as such', async (t) => {
  const agent = agentWith((pool) => pool.intercept({ path: '/', method: 'POST' }).reply(401, '<html>401</html>').persist())
  await t.rejects(client(agent).local('dns', 'service.reload', ['dnsmasq']), { code: 'SALTMASQ_SALT_FORBIDDEN', message: /local service\.reload.*external_auth/ })
})

t.test('bad credentials: a clear error that names the settings, never the password', async (t) => {
  const fake = fakeSaltApi()
  const err = await client(fake.agent, 'wrong-password').probe().catch((e: Error) => e)
  t.match(err, { code: 'SALTMASQ_SALT_AUTH_FAILED', statusCode: 502 })
  t.notMatch((err as Error).message, /wrong-password/)
})

t.test('netapi_enable_clients errors (400 with HTML) name the fix', async (t) => {
  const html = '<html><body><h2>400 Bad Request</h2><p>Client disabled: \'runner\'. Add to \'netapi_enable_clients\' master config option to enable.</p></body></html>'
  const agent = agentWith((pool) => pool.intercept({ path: '/', method: 'POST' }).reply(400, html))
  await t.rejects(client(agent).mineGet('*', 'x'), { code: 'SALTMASQ_SALT_CLIENT_DISABLED', message: /Client disabled: 'runner'.*netapi_enable_clients/ })
})

t.test('other 400s, 5xx, malformed bodies and network failures are coded errors', async (t) => {
  const bad = agentWith((pool) => pool.intercept({ path: '/', method: 'POST' }).reply(400, '<p>bad lowstate</p>'))
  await t.rejects(client(bad).mineGet('*', 'x'), { code: 'SALTMASQ_SALT_BAD_REQUEST', message: /bad lowstate/ })

  const down = agentWith((pool) => pool.intercept({ path: '/', method: 'POST' }).reply(503, 'Salt Master is not available.'))
  await t.rejects(client(down).mineGet('*', 'x'), { code: 'SALTMASQ_SALT_UNAVAILABLE', message: /503.*not available/ })

  const notJson = agentWith((pool) => pool.intercept({ path: '/', method: 'POST' }).reply(200, 'surprise'))
  await t.rejects(client(notJson).mineGet('*', 'x'), { code: 'SALTMASQ_SALT_BAD_RESPONSE' })

  const wrongShape = agentWith((pool) => pool.intercept({ path: '/', method: 'POST' }).reply(200, { return: 'x' }))
  await t.rejects(client(wrongShape).mineGet('*', 'x'), { code: 'SALTMASQ_SALT_BAD_RESPONSE' })

  const localNotMap = agentWith((pool) => pool.intercept({ path: '/', method: 'POST' }).reply(200, { return: [['x']] }))
  await t.rejects(client(localNotMap).local('dns', 'f', []), { code: 'SALTMASQ_SALT_BAD_RESPONSE' })

  const reset = agentWith((pool) => pool.intercept({ path: '/', method: 'POST' }).replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })))
  await t.rejects(client(reset).mineGet('*', 'x'), { code: 'SALTMASQ_SALT_UNREACHABLE', message: /ECONNRESET/ })

  const noToken = new MockAgent()
  noToken.disableNetConnect()
  noToken.get(SALT_URL).intercept({ path: '/login', method: 'POST' }).reply(200, { return: [{}] })
  await t.rejects(client(noToken).probe(), { code: 'SALTMASQ_SALT_BAD_RESPONSE', message: /without a token/ })
})

t.test('a salt-api that does not answer in time is a timeout error', async (t) => {
  const slow = agentWith((pool) => pool.intercept({ path: '/', method: 'POST' }).reply(200, { return: [{}] }).delay(500))
  await t.rejects(client(slow, 'salt-secret', 100).mineGet('*', 'x'), { code: 'SALTMASQ_SALT_TIMEOUT', message: /100 ms/ })
})

t.test('a local call may carry a deadline of its own, its target type, keyword arguments and Salt\'s waits', async (t) => {
  const slow = agentWith((pool) => pool.intercept({ path: '/', method: 'POST' }).reply(200, { return: [{ dns: true }] }).delay(300).times(2))
  const c = client(slow, 'salt-secret', 100)
  await t.rejects(c.local('dns', 'saltmasq.publish', []), { code: 'SALTMASQ_SALT_TIMEOUT', message: /100 ms/ })
  t.same(await c.local('dns', 'saltmasq.publish', [], { timeoutMs: 2000 }), { dns: true }, 'a larger deadline for this call only')
  const fake = fakeSaltApi()
  await client(fake.agent).local('dns-a,dns-b', 'saltmasq.publish', [], { tgtType: 'list', kwarg: { files: [] }, waitS: 3 })
  t.same(fake.calls.at(-1)?.body, [{ client: 'local', tgt: 'dns-a,dns-b', fun: 'saltmasq.publish', arg: [], tgt_type: 'list', kwarg: { files: [] }, timeout: 3, gather_job_timeout: 3 }])
})

t.test('a real refused connection is "unreachable"', async (t) => {
  const c = new SaltClient({ url: 'http://127.0.0.1:1', username: 'u', password: 'p', eauth: 'pam', timeoutMs: 1000, logger })
  await t.rejects(c.probe(), { code: 'SALTMASQ_SALT_UNREACHABLE', message: /ECONNREFUSED/ })
  await c.close()
})

t.test('a base path in SALT_API_URL is kept', async (t) => {
  const agent = new MockAgent()
  agent.disableNetConnect()
  const pool = agent.get(SALT_URL)
  pool.intercept({ path: '/salt/login', method: 'POST' }).reply(200, { return: [{ token: 't', expire: Date.now() / 1000 + 3600 }] })
  pool.intercept({ path: '/salt/', method: 'POST' }).reply(200, { return: [] })
  const c = new SaltClient({ url: `${SALT_URL}/salt/`, username: 'u', password: 'p', eauth: 'pam', timeoutMs: 1000, logger, dispatcher: agent })
  await c.probe()
  t.pass('called /salt/login and /salt/')
})

t.test('transient failures (refused, reset, timeout, 502/503/504) of idempotent calls are retried with backoff', async (t) => {
  const agent = agentWith((pool) => {
    pool.intercept({ path: '/', method: 'POST' }).reply(503, 'Salt Master is not available.')
    pool.intercept({ path: '/', method: 'POST' }).replyWithError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))
    pool.intercept({ path: '/', method: 'POST' }).reply(504, 'Gateway Time-out')
    pool.intercept({ path: '/', method: 'POST' }).reply(200, { return: [{ web01: ['10.0.0.5'] }] })
  })
  t.same(await client(agent, 'salt-secret', 2000, 3).mineGet('*', 'network.ip_addrs'), { web01: ['10.0.0.5'] })

  const exhausted = agentWith((pool) => pool.intercept({ path: '/', method: 'POST' }).reply(502, 'Bad Gateway').times(3))
  await t.rejects(client(exhausted, 'salt-secret', 2000, 2).probe(), { code: 'SALTMASQ_SALT_UNAVAILABLE', message: /502/ })
})

t.test('what is not transient is not retried: a 500, a 400, a refused login, an apply', async (t) => {
  const fivehundred = agentWith((pool) => pool.intercept({ path: '/', method: 'POST' }).reply(500, { status: 500, return: 'An unexpected error occurred' }))
  await t.rejects(client(fivehundred, 'salt-secret', 2000, 3).mineGet('*', 'x'), { code: 'SALTMASQ_SALT_UNAVAILABLE', message: /500/ })
  const fake = fakeSaltApi()
  await t.rejects(client(fake.agent, 'wrong', 2000, 3).probe(), { code: 'SALTMASQ_SALT_AUTH_FAILED' })
  t.equal(fake.logins, 1, 'one login attempt')
  const applyDown = agentWith((pool) => pool.intercept({ path: '/', method: 'POST' }).reply(503, 'down'))
  await t.rejects(client(applyDown, 'salt-secret', 2000, 3).local('dns', 'service.restart', ['dnsmasq']), { code: 'SALTMASQ_SALT_UNAVAILABLE' })
})

t.test('mine.update asks exactly the listed minions', async (t) => {
  const fake = fakeSaltApi()
  await client(fake.agent).mineUpdate(['web01', 'web02'])
  t.same(fake.calls.at(-1)?.body, [{ client: 'runner', fun: 'mine.update', kwarg: { tgt: 'web01,web02', tgt_type: 'list' } }])
})

t.test('a refused login is tried again only after minutes, doubling, never in a burst that would lock the account', async (t) => {
  const fake = fakeSaltApi()
  let now = 1_000_000
  const lines: string[] = []
  const log = pino({ level: 'info' }, { write: (line: string) => { lines.push(line) } })
  const c = new SaltClient({ url: SALT_URL, username: 'saltmasq', password: 'wrong', eauth: 'pam', timeoutMs: 2000, logger: log, dispatcher: fake.agent, retries: 3, retryBaseMs: 1, now: () => now })
  await t.rejects(c.probe(), { code: 'SALTMASQ_SALT_AUTH_FAILED' })
  for (let i = 0; i < 20; i++) await t.rejects(c.mineGet('*', 'x'), { code: 'SALTMASQ_SALT_AUTH_PAUSED', message: /not trying again for \d+ s.*pam_faillock.*SALT_API_PASSWORD/ })
  t.equal(fake.logins, 1, 'twenty calls in the first minute: one login attempt')
  now += 60_000
  await t.rejects(c.probe(), { code: 'SALTMASQ_SALT_AUTH_FAILED' })
  t.equal(fake.logins, 2, 'tried again after a minute')
  now += 60_000
  await t.rejects(c.probe())
  t.equal(fake.logins, 2, 'then the pause is two minutes')
  now += 60_000
  await t.rejects(c.probe())
  t.equal(fake.logins, 3)
  t.equal(lines.filter((l) => l.includes('SALT_API_PASSWORD')).length, 1, 'which variables to check is said once')
  t.notOk(lines.some((l) => l.includes('wrong')), 'never the password')
})

t.test('an answer past SALT_API_MAX_RESPONSE_MB fails the call with a clear error, it is not read into memory', async (t) => {
  const api = await SaltApiStandIn.listening({ huge: Array.from({ length: 50_000 }, (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`) })
  t.teardown(async () => { await api.close() })
  const c = new SaltClient({ url: api.url, username: 'saltmasq', password: api.password, eauth: 'pam', timeoutMs: 5000, logger, retries: 0, maxResponseBytes: 64 * 1024 })
  t.teardown(async () => { await c.close() })
  await t.rejects(c.mineGet('*', 'network.ip_addrs'), { code: 'SALTMASQ_SALT_BAD_RESPONSE', message: /larger than SALT_API_MAX_RESPONSE_MB/ })
  await c.probe()
  t.pass('small answers still read')
})
