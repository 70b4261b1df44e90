// Faults against the real salt-api and master: salt-api stopped in the middle of a burst, the
// master and salt-api restarted under saltmasq (its session dies → 401), and a salt-api slowed
// down past saltmasq's timeout. Each time saltmasq must not crash, must say what is wrong on
// /ready, and must converge on its own once salt-api is back. No secret may reach the log.
import { randomBytes } from 'node:crypto'
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { pino } from 'pino'
import { buildApp, type SaltmasqApp } from '../../src/app.js'
import { DelayProxy } from '../harness/delay-proxy.js'
import { LoopbackDnsmasq } from '../harness/loopback-dnsmasq.js'
import { freePort, waitFor } from '../harness/processes.js'
import { SaltLab } from '../harness/salt-lab.js'

const token = randomBytes(24).toString('hex')
const tmp = await mkdtemp(join(tmpdir(), 'smq-faults-'))
let dns: LoopbackDnsmasq | undefined
let lab: SaltLab | undefined
let proxy: DelayProxy | undefined
let app: SaltmasqApp | undefined

t.teardown(async () => {
  await app?.close()
  await proxy?.close()
  await lab?.stop()
  await dns?.stop()
  if (process.env.SALTMASQ_KEEP_LAB !== undefined) await cp(logFile, join(tmpdir(), 'saltmasq-faults.log'))
  await rm(tmp, { recursive: true, force: true })
})

dns = await LoopbackDnsmasq.start(join(tmp, 'dns'))
const port = await freePort()
lab = await SaltLab.start({
  minions: [
    { id: 'web01', ips: ['10.77.0.11'] },
    { id: 'web02', ips: ['10.77.0.12'] },
    { id: 'dns-host', ips: ['127.0.0.1'] },
  ],
  webhookUrl: `http://127.0.0.1:${port}/hooks/salt`,
  webhookToken: token,
  extraPermissions: ["      - 'dns-host':", '        - cmd.run_all:', '            args:', `              - ${dns.reloadScript}`].join('\n'),
})
proxy = await DelayProxy.start(lab.apiUrl)
const logFile = join(tmp, 'saltmasq.log')
app = await buildApp({
  env: {
    ...lab.saltApiEnv,
    SALT_API_URL: proxy.url,
    SALT_API_TIMEOUT_MS: '3000',
    WEBHOOK_TOKEN: token,
    MANAGED_SUBNETS: '10.77.0.0/16',
    RESERVATIONS_FORMAT: 'hostsdir',
    DHCP_HOSTSDIR: dns.dhcpHostsDir,
    DNS_HOSTSDIR: dns.dnsHostsDir,
    STATE_FILE: join(tmp, 'state.json'),
    DNSMASQ_MINION: 'dns-host',
    DNSMASQ_APPLY_FUNCTION: 'cmd.run_all',
    DNSMASQ_APPLY_ARGS: JSON.stringify([dns.reloadScript]),
    DNSMASQ_RELEASE_FUNCTION: '',
    LOG_LEVEL: 'info',
  },
  logger: pino({ level: 'info' }, pino.destination({ dest: logFile, sync: true })),
})
await app.listen({ host: '127.0.0.1', port })
const auth = { authorization: `Bearer ${token}` }
const reserved = () => app!.saltmasq.engine.reservations.map((r) => r.minionId).sort()

t.test('salt-api stopped in the middle of a burst: no crash, /ready says why, converges once it is back', async (t) => {
  await lab!.stopApi()
  const answers = await Promise.all(Array.from({ length: 50 }, async (_, i) => (await app!.inject({
    method: 'POST', url: '/hooks/salt', headers: auth, payload: { tag: `salt/cloud/${i % 2 === 0 ? 'web01' : 'web02'}/created` },
  })).statusCode))
  t.same(new Set(answers), new Set([202]), 'every event accepted')
  const down = await app!.inject({ method: 'GET', url: '/ready' })
  t.equal(down.statusCode, 503)
  t.match(down.json().reason, /salt-api/)
  await lab!.startApi()
  await waitFor('web01 and web02 reserved without another event', () => ['web01', 'web02'].every((id) => reserved().includes(id)), 90_000, 200)
  await waitFor('/ready 200', async () => (await app!.inject({ method: 'GET', url: '/ready' })).statusCode === 200, 30_000)
  t.pass('converged')
})

t.test('master and salt-api restarted: the old session gets a 401, saltmasq logs in again and carries on', async (t) => {
  await lab!.restartMasterAndApi()
  await lab!.startMinion({ id: 'web03', ips: ['10.77.0.13'] })
  await lab!.waitForMinions(['web03'])
  await lab!.refreshMine(['web03'])
  const res = await app!.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  t.equal(res.statusCode, 200)
  t.same(res.json().added.map((r: { minionId: string }) => r.minionId), ['web03'])
  t.match(await readFile(logFile, 'utf8'), /salt-api session rejected; logging in again/)
})

t.test('salt-api slower than SALT_API_TIMEOUT_MS: timeouts are retried; a lasting slowness is reported, then converges', async (t) => {
  await lab!.startMinion({ id: 'web04', ips: ['10.77.0.14'] })
  await lab!.waitForMinions(['web04'])
  await lab!.refreshMine(['web04'])
  proxy!.delayMs = 4000
  const slow = await app!.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  t.equal(slow.statusCode, 504)
  t.match(slow.json(), { code: 'SALTMASQ_SALT_TIMEOUT' })
  t.match(await readFile(logFile, 'utf8'), /salt-api call failed; retrying/)
  t.equal((await app!.inject({ method: 'GET', url: '/ready' })).statusCode, 503)
  proxy!.delayMs = 200
  await waitFor('web04 reserved by the retry after the failure', () => reserved().includes('web04'), 90_000, 200)
  proxy!.delayMs = 0
  await waitFor('/ready 200', async () => (await app!.inject({ method: 'GET', url: '/ready' })).statusCode === 200, 30_000)
  t.pass('converged')
})

t.test('no secret in the log of a run full of failures', async (t) => {
  const log = await readFile(logFile, 'utf8')
  t.ok(log.includes('sync failed'), 'the failures were logged')
  for (const [name, secret] of [['webhook token', token], ['salt-api password', lab!.apiPassword]] as const) t.notOk(log.includes(secret), name)
  t.notMatch(log, /x-auth-token":\s*"[0-9a-f]{20,}/i, 'no salt-api session token')
})
