// The core path against a real Salt master, salt-api and minions: a salt-cloud event fired on
// the master bus → the project's reactor → saltmasq's webhook → mine.get through salt-api →
// reservations file → dnsmasq restarted on the dnsmasq minion through salt-api.
import { readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { pino } from 'pino'
import { buildApp } from '../../src/app.js'
import { Lab } from '../../lab/lab.js'
import { run, waitFor } from '../../lab/processes.js'

const lab = await Lab.start({
  minions: [
    { id: 'web01', ips: ['10.77.0.11', '192.168.99.3'] },
    { id: 'db01.example.com', ips: ['172.16.5.5', '10.77.0.12'] },
  ],
  // The reactor's http.query logs what it sends at debug level: the token must not be there.
  masterLogLevel: 'debug',
})
t.teardown(async () => { await lab.stop() })
const { dns, salt, token } = lab
const logFile = join(lab.dir, 'saltmasq.log')

const hookArrivals: number[] = []
const app = await lab.startSaltmasq(
  // The reactor's path alone (test/integration/event-stream.test.ts has the stream's).
  lab.saltmasqEnv('conf', { EVENT_STREAM: 'false' }),
  pino({ level: 'info' }, pino.destination({ dest: logFile, sync: true })),
  (app) => app.addHook('onRequest', async (request) => { if (request.url === '/hooks/salt') hookArrivals.push(Date.now()) }),
)
const auth = lab.auth

async function reservationsFile(): Promise<string> {
  return await readFile(dns.reservationsConf, 'utf8').catch(() => '')
}

t.test('a full resync reserves every minion with its address in the managed subnet', async (t) => {
  const pidBefore = await dns.pid()
  const res = await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  t.equal(res.statusCode, 200)
  const result = res.json()
  t.same(result.added.map((r: { minionId: string, ip: string }) => `${r.minionId}=${r.ip}`), ['db01.example.com=10.77.0.12', 'web01=10.77.0.11'])
  t.same(result.skipped.map((s: { minionId: string }) => s.minionId), ['dns-host'], 'the minion with no managed address is skipped')
  t.same(result.filesChanged, [dns.reservationsConf])
  t.equal(result.applied, true)
  t.equal(await reservationsFile(), [
    '# Managed by saltmasq. Any change made here will be overwritten.', 'dhcp-host=db01.example.com,10.77.0.12',
    'dhcp-host=web01,10.77.0.11', '',
  ].join('\n'))
  const pidAfter = await dns.pid()
  t.ok(pidAfter, 'dnsmasq runs with the new file')
  t.not(pidAfter, pidBefore, 'dnsmasq was restarted through salt-api')
})

t.test('a resync with nothing new writes nothing and applies nothing', async (t) => {
  const pidBefore = await dns.pid()
  const mtime = (await stat(dns.reservationsConf)).mtimeMs
  const res = await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  const result = res.json()
  t.same(result.added, [])
  t.same(result.removed, [])
  t.same(result.kept, ['db01.example.com', 'web01'])
  t.same(result.filesChanged, [])
  t.equal(result.applied, false)
  t.equal((await stat(dns.reservationsConf)).mtimeMs, mtime, 'the file was not rewritten')
  t.equal(await dns.pid(), pidBefore, 'dnsmasq was not restarted')
})

t.test('a created event on the master bus reaches saltmasq through the reactor and reserves the new minion', async (t) => {
  await salt.startMinion({ id: 'app01', ips: ['10.77.3.40'] })
  await salt.waitForMinions(['app01'])
  await salt.refreshMine(['app01'])
  const pidBefore = await dns.pid()
  hookArrivals.length = 0
  const fired = Date.now()
  await salt.fireEvent('salt/cloud/app01/created', { name: 'app01', profile: 'lab', provider: 'lab:saltify', event: 'created instance' })
  const written = await waitFor('app01 in the reservations file', async () => (await reservationsFile()).includes('dhcp-host=app01,10.77.3.40\n') && Date.now(), 90_000, 10)
  t.equal(hookArrivals.length, 1, 'the reactor posted the event once')
  const hookToFile = written - hookArrivals[0]!
  t.comment(`event fired → file written: ${written - fired} ms; webhook received → file written: ${hookToFile} ms`)
  await waitFor('dnsmasq restarted', async () => { const pid = await dns.pid(); return pid !== undefined && pid !== pidBefore })
  t.pass('dnsmasq restarted with app01 reserved')
})

t.test('a destroyed event after the minion is gone removes its reservation', async (t) => {
  await salt.destroyMinion('app01')
  await waitFor('app01 gone from the mine', async () => !('app01' in await salt.mine()))
  const pidBefore = await dns.pid()
  await salt.fireEvent('salt/cloud/app01/destroyed', { name: 'app01', event: 'destroyed instance' })
  await waitFor('app01 out of the reservations file', async () => !(await reservationsFile()).includes('app01'), 90_000, 50)
  t.match(await reservationsFile(), /dhcp-host=web01,10\.77\.0\.11\n/, 'the others stay')
  await waitFor('dnsmasq restarted', async () => { const pid = await dns.pid(); return pid !== undefined && pid !== pidBefore })
  const listed = (await app.inject({ method: 'GET', url: '/reservations', headers: auth })).json()
  t.same(listed.reservations.map((r: { minionId: string }) => r.minionId), ['db01.example.com', 'web01'])
})

t.test('conf format: a file real dnsmasq --test rejects is rolled back and dnsmasq is not restarted', async (t) => {
  // A reservation made by hand elsewhere in conf-dir holds the address the mine reports for clash01.
  const manual = join(dns.dir, 'dnsmasq.d', 'manual.conf')
  await writeFile(manual, 'dhcp-host=legacy,10.77.9.9\n')
  await salt.startMinion({ id: 'clash01', ips: ['10.77.9.9'] })
  await salt.waitForMinions(['clash01'])
  await salt.refreshMine(['clash01'])
  const before = await reservationsFile()
  const pidBefore = await dns.pid()
  const res = await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  t.equal(res.statusCode, 502)
  t.match(res.json(), { code: 'SALTMASQ_DNSMASQ_CHECK_FAILED', message: /duplicate dhcp-host IP address 10\.77\.9\.9/ })
  t.equal(await reservationsFile(), before, 'the previous file is back')
  t.equal(await dns.pid(), pidBefore, 'dnsmasq kept running, not restarted')
  t.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 503)

  await rm(manual)
  // The engine retries a failed sync on its own; this resync runs or joins whichever comes first.
  t.equal((await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })).statusCode, 200)
  t.match(await reservationsFile(), /dhcp-host=clash01,10\.77\.9\.9\n/)
  t.not(await dns.pid(), pidBefore, 'and dnsmasq restarted with it')
  await salt.destroyMinion('clash01')
  await app.inject({ method: 'DELETE', url: '/reservations/clash01?wait=true', headers: auth })
})

t.test('conf format published through Salt: the dnsmasq minion\'s real dnsmasq --test rejects the file, which it puts back there', async (t) => {
  await lab.syncModules()
  const manual = join(dns.dir, 'dnsmasq.d', 'manual.conf')
  await writeFile(manual, 'dhcp-host=legacy2,10.77.9.8\n')
  t.teardown(async () => { await rm(manual, { force: true }) })
  await salt.startMinion({ id: 'clash02', ips: ['10.77.9.8'] })
  await salt.waitForMinions(['clash02'])
  await salt.refreshMine(['clash02'])
  t.teardown(async () => { await salt.destroyMinion('clash02') })
  const before = await reservationsFile()
  const pidBefore = await dns.pid()
  const viaSalt = await buildApp({
    env: lab.saltmasqEnv('conf', { DNSMASQ_PUBLISH: 'salt', EVENT_STREAM: 'false', RECONCILE_INTERVAL_S: '0', STATE_FILE: join(lab.dir, 'state-salt-conf.json') }),
    logger: pino({ level: 'silent' }),
  })
  t.teardown(async () => { await viaSalt.close() })
  const res = await viaSalt.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  t.equal(res.statusCode, 502)
  t.match(res.json(), { code: 'SALTMASQ_NO_DNSMASQ_MINION_CURRENT', message: /dns-host: .*dnsmasq --test rejected the files, so the previous ones were put back: .*duplicate dhcp-host IP address 10\.77\.9\.8/ })
  t.equal(await reservationsFile(), before, 'the minion put the previous file back')
  t.equal(await dns.pid(), pidBefore, 'dnsmasq kept running, not restarted')
  t.match((await viaSalt.inject({ method: 'GET', url: '/reservations', headers: auth })).json().dnsmasqMinions, [{ minion: 'dns-host', state: 'behind', reason: /dnsmasq --test rejected/ }])
})

t.test('/ready follows salt-api: 503 while it is down, 200 once it is back', async (t) => {
  await app.saltmasq.readiness.refresh()
  t.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200)
  await salt.stopApi()
  await app.saltmasq.readiness.refresh()
  const down = await app.inject({ method: 'GET', url: '/ready', headers: auth })
  t.equal(down.statusCode, 503)
  t.match(down.json(), { reason: /salt-api/, detail: { saltApi: { reachable: false } } })
  await salt.startApi()
  await waitFor('/ready to be 200 again', async () => {
    await app.saltmasq.readiness.refresh()
    return (await app.inject({ method: 'GET', url: '/ready' })).statusCode === 200
  }, 30_000)
  t.pass('ready again')
})

t.test('a destroyed event a minion sends with event.send is skipped by the reactor and removes nothing', async (t) => {
  hookArrivals.length = 0
  await salt.salt(['web01', 'event.send', 'salt/cloud/db01.example.com/destroyed', '{"name": "db01.example.com"}'])
  // A legitimate event after it, for a machine saltmasq does not hold: once the reactor has
  // posted that one, it has been through the forged one too (one reactor, one event at a time).
  await salt.fireEvent('salt/cloud/sentinel01/destroyed', { name: 'sentinel01', event: 'destroyed instance' })
  await waitFor('the sentinel posted', () => hookArrivals.length >= 1, 60_000, 20)
  await app.saltmasq.scheduler.idle()
  t.equal(hookArrivals.length, 1, 'only the master\'s own event was posted')
  t.ok(app.saltmasq.ledger.has('db01.example.com'), 'db01 keeps its reservation')
  t.equal(app.saltmasq.intake.counts.webhook.refused, 0, 'the reactor skipped it before saltmasq had to')
})

t.test('the webhook token is in neither the job cache nor the master log (the reactor reads it from a root-only file)', async (t) => {
  const grep = await run('grep', ['-rlF', token, salt.root])
  t.ok(grep.code === 0 || grep.code === 1, `grep ran (exit ${grep.code})`)
  const hits = grep.stdout.split('\n').filter((f) => f !== '' && !f.endsWith('saltmasq-webhook.headers'))
  t.same(hits, [], 'no file under the master\'s root_dir (job cache, logs) holds the token')
  t.match(await readFile(salt.masterLog, 'utf8'), /Requesting URL http:\/\/127\.0\.0\.1:\d+\/hooks\/salt/, 'the master did log its requests at debug level')
})

t.test('no secret reached the log', async (t) => {
  const log = await readFile(logFile, 'utf8')
  t.ok(log.length > 0)
  t.notOk(log.includes(token), 'webhook token')
  t.notOk(log.includes(salt.apiPassword), 'salt-api password')
})
