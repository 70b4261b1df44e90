// Events through salt-api's own stream, against a real master, salt-api and minions with the
// reactor map removed: saltmasq hears the bus only through GET /events. Gaps in the stream are
// repaired by the full sync after every reconnect; machines destroyed while saltmasq was down
// are found by their missing keys; cloud events forged by a minion are refused; an apply that
// failed before a restart is made after it.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { pino } from 'pino'
import type { SaltmasqApp } from '../../src/app.js'
import { Lab } from '../../lab/lab.js'
import { waitFor } from '../../lab/processes.js'
import { SaltmasqProcess } from '../../lab/saltmasq-process.js'

const KEY_GONE_S = 6
const lab = await Lab.start({ minions: [{ id: 'web01', ips: ['10.77.0.11'] }], reactor: false })
t.teardown(async () => { await lab.stop() })
const { salt, dns } = lab
const logFile = join(lab.dir, 'saltmasq.log')
const env = lab.saltmasqEnv('hostsfile', { DNS_DOMAIN: 'lab', DESTROY_WHEN_KEY_GONE_S: String(KEY_GONE_S), RECONCILE_INTERVAL_S: '0' })
const logger = pino({ level: 'info' }, pino.destination({ dest: logFile, sync: true }))
let app: SaltmasqApp = await lab.startSaltmasq(env, logger)
const reserved = () => app.saltmasq.ledger.current
const stream = () => app.saltmasq.stream!.state

async function connectedAndSynced(): Promise<void> {
  await waitFor('the event stream connected', () => stream().connected, 30_000, 20)
  await waitFor('the sync after the connect', () => app.saltmasq.scheduler.lastResult !== null, 30_000, 20)
  await app.saltmasq.scheduler.idle()
}

t.test('with no reactor at all, a created event on the bus is reserved through the stream', async (t) => {
  await connectedAndSynced()
  t.ok(reserved().has('web01'), 'the sync at connect reserved what the mine had')
  const [app01] = await salt.load.registerFakeMinions(1, '10.77.5', 'app')
  await salt.load.fireCloudEvents('created', 1, app01)
  await waitFor('app001 reserved', () => reserved().has(app01!), 30_000, 20)
  await waitFor('app001.lab answered by dnsmasq', async () => (await dns.resolve('app000.lab')).includes('10.77.5.10'), 30_000, 50)
  t.match(app.saltmasq.intake.counts, { stream: { accepted: 1 }, webhook: { accepted: 0 } })
})

t.test('a destroyed event a minion sends with event.send removes nothing', async (t) => {
  const before = app.saltmasq.intake.counts.stream.refused
  // What `salt-call event.send` does on the minion web01: the master relays it onto its bus.
  await salt.salt(['web01', 'event.send', 'salt/cloud/app000/destroyed', '{"name": "app000"}'])
  await waitFor('the forged event refused', () => app.saltmasq.intake.counts.stream.refused === before + 1, 30_000, 20)
  await app.saltmasq.scheduler.idle()
  t.ok(reserved().has('app000'), 'app000 keeps its reservation')
  t.match(await readFile(logFile, 'utf8'), /"tag":"salt\/cloud\/app000\/destroyed","from":"web01","msg":"refused a cloud or key event relayed from a minion/)
})

t.test('salt-api restarted while a machine is created: the stream reconnects, resyncs, and nothing is lost', async (t) => {
  const reconnects = stream().reconnects
  await salt.stopApi()
  const [late] = await salt.load.registerFakeMinions(1, '10.77.6', 'late')
  // Fired while no stream can hear it: gone for good, as rest_cherrypy has no replay.
  await salt.load.fireCloudEvents('created', 1, late)
  await salt.startApi()
  await waitFor('the stream back', () => stream().connected && stream().reconnects > reconnects, 60_000, 50)
  await waitFor('late000 reserved by the resync after the reconnect', () => reserved().has(late!), 30_000, 20)
  t.pass(`reconnected (${stream().reconnects} reconnects) and late000 reserved without its event`)
})

t.test('the master and salt-api restarted mid-stream: reconnect, and events after it count', async (t) => {
  const reconnects = stream().reconnects
  await salt.restartMasterAndApi()
  await waitFor('the stream back', () => stream().connected && stream().reconnects > reconnects, 90_000, 50)
  const [after] = await salt.load.registerFakeMinions(1, '10.77.7', 'after')
  await salt.load.fireCloudEvents('created', 1, after)
  await waitFor('after000 reserved through the new stream', () => reserved().has(after!), 30_000, 20)
  t.pass('carried on after the restart')
})

t.test('20 machines destroyed while saltmasq is down are released by their missing keys; one that only left the mine is kept', async (t) => {
  const fleet = await salt.load.registerFakeMinions(20, '10.77.8', 'gone')
  await app.inject({ method: 'POST', url: '/resync?wait=true', headers: lab.auth })
  t.ok(fleet.every((id) => reserved().has(id)), 'all 20 reserved')
  await lab.stopSaltmasq()

  // salt-cloud -d deletes each key (no event reaches saltmasq: it is down); web01 only leaves the mine.
  await salt.deleteKeys(fleet)
  await salt.salt(['web01', 'mine.flush'])
  await waitFor('web01 gone from the mine', async () => !('web01' in await salt.mine()), 30_000, 200)

  const started = Date.now()
  app = await lab.startSaltmasq(env, logger)
  t.ok(fleet.every((id) => reserved().has(id)), 'nothing released before any key list was read')
  await waitFor('all 20 released', () => fleet.every((id) => !reserved().has(id)), (KEY_GONE_S + 30) * 1000, 100)
  const tookS = (Date.now() - started) / 1000
  t.ok(tookS >= KEY_GONE_S, `released after ${tookS.toFixed(1)} s, not before DESTROY_WHEN_KEY_GONE_S (${KEY_GONE_S} s)`)
  await app.saltmasq.scheduler.idle()
  t.ok(reserved().has('web01'), 'web01 (key still there) keeps its reservation')
  t.ok(reserved().get('web01')?.staleSince, 'marked stale')
  const log = await readFile(logFile, 'utf8')
  const keyGoneLines = log.split('\n').filter((l) => l.includes('(key-gone)')).map((l) => JSON.parse(l) as { minionId: string, keyGoneSince: string, time: number })
  // Each of the 20 exactly once, and no one else (the lines themselves are in the message if not).
  t.same(keyGoneLines.map((l) => l.minionId).sort(), [...fleet].sort(), `each release logged once with the reason key-gone: ${JSON.stringify(keyGoneLines.filter((l) => !fleet.includes(l.minionId) || keyGoneLines.filter((m) => m.minionId === l.minionId).length > 1))}`)
  const published = await readFile(dns.dhcpHostsFile, 'utf8')
  t.notMatch(published, /gone0/, 'no longer published to dnsmasq')
  t.equal((await dns.resolve('gone000.lab')).length, 0, 'and dnsmasq no longer answers for them')
})

t.test('an apply that failed (dnsmasq minion down), then saltmasq killed with SIGKILL: the apply is made after the restart', async (t) => {
  // The real process, so the kill leaves exactly what a crash leaves on disk.
  await lab.stopSaltmasq()
  const processLog = join(lab.dir, 'saltmasq-process.log')
  // The SIGHUP path: with delta files (the default) an addition needs no apply at all.
  const sighupEnv = { ...env, HOSTSFILE_DELTAS: 'false' }
  let svc = await SaltmasqProcess.start(sighupEnv, processLog)
  await waitFor('the process synced once', async () => (await svc.request('GET', '/reservations')).body?.lastSync != null, 30_000, 100)
  await salt.stopMinion('dns-host')
  const [owed] = await salt.load.registerFakeMinions(1, '10.77.9', 'owed')
  const res = await svc.request('POST', '/resync?wait=true')
  // No minion answers: salt-api says so after its own timeout, or saltmasq's comes first.
  t.match(res.body, { code: /^SALTMASQ_(APPLY_NO_MINION|SALT_TIMEOUT)$/ })
  t.match(await readFile(dns.dhcpHostsFile, 'utf8'), /owed000,10\.77\.9\.10/, 'the file was written')
  t.equal((await dns.resolve('owed000.lab')).length, 0, 'but dnsmasq was not told')
  t.equal(await svc.kill('SIGKILL'), null, 'killed, no exit code')

  await salt.startMinion({ id: 'dns-host', ips: ['127.0.0.1'] })
  await salt.waitForMinions(['dns-host'])
  svc = await SaltmasqProcess.start(sighupEnv, processLog)
  t.teardown(async () => { await svc.stop() })
  await waitFor('dnsmasq answering for owed000.lab', async () => (await dns.resolve(`${owed!}.lab`)).includes('10.77.9.10'), 60_000, 100)
  await waitFor('/ready true once nothing is owed', async () => (await svc.request('GET', '/ready')).status === 200, 60_000, 200)
  // What an operator sees of all this, from the real process against the real master.
  const metrics = (await svc.request('GET', '/metrics')).body as string
  t.match(metrics, /^saltmasq_syncs_total\{outcome="ok"\} [1-9]/m, '/metrics: syncs')
  t.match(metrics, /^saltmasq_dnsmasq_applies_total [1-9]/m, '/metrics: the apply made after the restart')
  t.match(metrics, /^saltmasq_salt_api_calls_total\{client="runner",fun="mine\.get",outcome="ok"\} [1-9]/m, '/metrics: salt-api calls')
  t.match(metrics, /^saltmasq_event_stream_connected 1$/m, '/metrics: the stream')
  t.match(metrics, /^saltmasq_dnsmasq_apply_owed_since_timestamp_seconds 0$/m, '/metrics: nothing owed')
  const diff = await svc.request('GET', '/reservations/diff')
  t.match(diff, { status: 200, body: { added: [], files: [], apply: 'none' } }, 'the dry run against the real mine: nothing to do')
  const log = await readFile(processLog, 'utf8')
  t.match(log, /owed/i, 'the owed apply was read back from disk and logged')
  t.notOk(log.includes(lab.token) || log.includes(salt.apiPassword), 'no secret in the process log')
  await svc.stop()
})

t.test('no secret in the log, and no event saltmasq does not use', async (t) => {
  const log = await readFile(logFile, 'utf8')
  t.notOk(log.includes(lab.token), 'webhook token')
  t.notOk(log.includes(salt.apiPassword), 'salt-api password')
  t.notMatch(log, /salt\/job\//, 'no job event was logged')
})
