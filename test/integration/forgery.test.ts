// Events are hints, Salt is the truth, against a real master, salt-api, reactor and minions: every
// way a minion (root on its own host, holding only its own key) can put an event or mine data
// on the master is tried, through both the reactor's webhook and salt-api's stream, and none of
// them removes or steals a reservation (flood.test.ts: none blocks one). Genuine destroys, salt-cloud's way (the event
// first, the key deleted after it, or after a whole batch), still release.
import { createHash } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { pino } from 'pino'
import { buildApp } from '../../src/app.js'
import { Lab } from '../../lab/lab.js'
import { waitFor } from '../../lab/processes.js'

const GATEWAY = '10.77.0.1'
const CONFIRM_S = 25
const lab = await Lab.start({ minions: [{ id: 'web01', ips: ['10.77.0.11'] }] })
t.teardown(async () => { await lab.stop() })
const { salt } = lab
const logFile = join(lab.dir, 'saltmasq.log')
const hookArrivals: string[] = []
const app = await lab.startSaltmasq(
  lab.saltmasqEnv('hostsfile', { DNS_DOMAIN: 'lab', EXCLUDED_ADDRESSES: GATEWAY, DESTROY_CONFIRM_S: String(CONFIRM_S), RECONCILE_INTERVAL_S: '0' }),
  pino({ level: 'info' }, pino.destination({ dest: logFile, sync: true })),
  (app) => app.addHook('preHandler', async (request) => {
    if (request.url === '/hooks/salt') hookArrivals.push((request.body as { tag?: string }).tag ?? '')
  }),
)
const { scheduler, ledger, intake } = app.saltmasq
const stream = () => app.saltmasq.stream!.state
const snapshot = () => JSON.stringify([...ledger.current.values()].map((r) => [r.minionId, r.ip]))

/** A minion's own load, sent as that minion (an attacker holding only the key of `evil01`). */
async function asEvil(load: Record<string, unknown>): Promise<void> {
  await salt.load.asMinion('evil01', { cmd: '_minion_event', tok: 'x', ...load })
}

/**
 * Waits until everything the bus carried before now has reached saltmasq and been settled: the
 * reactor posts a sentinel event the master fires after them (one reactor, events in order;
 * the stream is faster than the reactor), then the claims they made are read for.
 */
async function settle(): Promise<void> {
  const sentinel = `sentinel${Date.now()}`
  await salt.load.fireCloudEvents('destroyed', 1, sentinel)
  await waitFor('the sentinel through the reactor', () => hookArrivals.includes(`salt/cloud/${sentinel}/destroyed`), 60_000, 20)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  await scheduler.idle()
}

let victims: string[] = []

t.test('set-up: a fleet reserved through the real master', async (t) => {
  await waitFor('the event stream connected', () => stream().connected, 30_000, 20)
  victims = await salt.load.registerFakeMinions(6, '10.77.3', 'db')
  const res = await app.inject({ method: 'POST', url: '/resync?wait=true', headers: lab.auth })
  t.equal(res.statusCode, 200)
  t.ok(victims.every((id) => ledger.has(id)), 'db000..db005 reserved')
})

t.test('a destroyed event a minion relays with event.send changes nothing', async (t) => {
  const before = snapshot()
  await salt.salt(['web01', 'event.send', 'salt/cloud/db000/destroyed', '{"name": "db000"}'])
  await settle()
  t.equal(snapshot(), before)
  t.ok(intake.counts.stream.refused >= 1, 'refused on the stream')
})

t.test('pretagged events (bare data, no cmd, no id) are only hints: nothing is released while the key is accepted', async (t) => {
  const before = snapshot()
  const claimsBefore = scheduler.unconfirmedDestroys
  await asEvil({ events: [{ tag: 'destroyed', data: { name: 'db000' } }], pretag: 'salt/cloud/db000' })
  await waitFor('the hint reached saltmasq by the reactor', () => hookArrivals.includes('salt/cloud/db000/destroyed'), 60_000, 20)
  await waitFor('the claim made', () => scheduler.backlog > 0, 10_000, 20)
  // The pretagged salt/key delete, too.
  await asEvil({ events: [{ tag: 'key', data: { act: 'delete', id: 'db001', result: true } }], pretag: 'salt' })
  await settle()
  t.equal(snapshot(), before, 'db000 and db001 keep their reservations')
  await waitFor('the unconfirmed claim dropped', () => scheduler.unconfirmedDestroys > claimsBefore, (CONFIRM_S + 20) * 1000, 100)
  t.equal(snapshot(), before, 'and still do after DESTROY_CONFIRM_S')
  t.match(await readFile(logFile, 'utf8'), /"minionId":"db000".*destroyed event not confirmed by the key list/)
  t.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /^saltmasq_destroy_events_unconfirmed_total [1-9]/m)
})

t.test('a carriage return in a relayed tag makes no second record', async (t) => {
  const before = snapshot()
  const refused = stream().recordsRefused
  await salt.salt(['web01', 'event.send', 'salt/cloud/x/created\rdata: {"tag": "salt/cloud/db002/destroyed", "data": {"name": "db002"}}\r\r', '{}'])
  await waitFor('the record refused', () => stream().recordsRefused > refused, 30_000, 20)
  await settle()
  t.equal(snapshot(), before)
  t.equal(scheduler.backlog, 0, 'no claim for db002')
})

t.test('mine squatting: a gateway in EXCLUDED_ADDRESSES and another machine\'s address are never taken', async (t) => {
  const before = snapshot()
  const victimIp = ledger.current.get('db003')!.ip
  await salt.load.asMinion('squat01', { cmd: '_mine', tok: 'x', data: { 'network.ip_addrs': [GATEWAY, '10.77.0.0', '10.77.255.255'] } })
  await salt.load.asMinion('thief01', { cmd: '_mine', tok: 'x', data: { 'network.ip_addrs': [victimIp] } })
  const res = (await app.inject({ method: 'POST', url: '/resync?wait=true', headers: lab.auth })).json()
  t.match(res.skipped.find((s: { minionId: string }) => s.minionId === 'squat01'), { reason: /no reservable address inside MANAGED_SUBNETS \(mine has: 10\.77\.0\.1, 10\.77\.0\.0, 10\.77\.255\.255\)/ })
  t.match(res.conflicts.find((c: { minionId: string }) => c.minionId === 'thief01'), { reason: 'ip-taken', heldBy: 'db003', ip: victimIp })
  t.equal(snapshot(), before, 'nothing changed')
})

t.test('mine squatting by MAC (MINE_FUNCTION=network.interfaces): another machine\'s MAC is never taken', async (t) => {
  // A second saltmasq reserving by MAC, with files of its own, against the same master.
  const dir = join(lab.dir, 'by-mac')
  await mkdir(dir, { recursive: true })
  const byMac = await buildApp({
    env: {
      ...lab.saltmasqEnv('hostsfile'),
      MINE_FUNCTION: 'network.interfaces',
      EVENT_STREAM: 'false',
      RECONCILE_INTERVAL_S: '0',
      STATE_FILE: join(dir, 'state.json'),
      DHCP_HOSTSFILE: join(dir, 'dhcp-hosts'),
      ADDN_HOSTS_FILE: join(dir, 'addn-hosts'),
      DHCP_HOSTSDIR: join(dir, 'dhcp-hosts.d'),
      DNS_HOSTSDIR: join(dir, 'hosts.d'),
    },
    logger: pino({ level: 'silent' }),
  })
  t.teardown(async () => { await byMac.close() })
  const mac = '02:00:00:00:09:10'
  await salt.load.asMinion('macvictim', { cmd: '_mine', tok: 'x', data: { 'network.interfaces': { eth0: { hwaddr: mac, inet: [{ address: '10.77.9.10' }] } } } })
  const first = (await byMac.inject({ method: 'POST', url: '/resync?wait=true', headers: lab.auth })).json()
  t.match(first.added.find((r: { minionId: string }) => r.minionId === 'macvictim'), { ip: '10.77.9.10', mac })
  await salt.load.asMinion('macthief', { cmd: '_mine', tok: 'x', data: { 'network.interfaces': { eth0: { hwaddr: mac.toUpperCase(), inet: [{ address: '10.77.9.11' }] } } } })
  const second = (await byMac.inject({ method: 'POST', url: '/resync?wait=true', headers: lab.auth })).json()
  t.match(second.conflicts.find((c: { minionId: string }) => c.minionId === 'macthief'), { reason: 'mac-taken', heldBy: 'macvictim', mac })
  t.match(byMac.saltmasq.ledger.current.get('macvictim'), { ip: '10.77.9.10', mac }, 'the victim keeps its reservation')
  t.notOk(byMac.saltmasq.ledger.has('macthief'))
})

t.test('a pending key filed under a destroyed machine\'s id does not keep its reservation', async (t) => {
  await salt.load.fireCloudEvents('destroyed', 1, 'db004')
  await salt.deleteKeys(['db004'])
  await salt.filePendingKey('db004')
  await waitFor('db004 released', () => !ledger.has('db004'), 20_000, 20)
  t.pass('released: a pending key is not an accepted one')
})

t.test('a genuine destroy the way salt-cloud does it: the event, the key deleted after it; released within a second of the key\'s deletion', async (t) => {
  await salt.load.fireCloudEvents('destroyed', 1, 'db005')
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.ok(ledger.has('db005'), 'kept while the key is accepted')
  const deleted = Date.now()
  await salt.deleteKeys(['db005'])
  const keyGoneAt = Date.now()
  await waitFor('db005 released', () => !ledger.has('db005'), 20_000, 10)
  const ms = Date.now() - keyGoneAt
  t.comment(`released ${ms} ms after salt-key -d returned (${Date.now() - deleted} ms after it started)`)
  t.ok(ms < 3000, `released ${ms} ms after the key was deleted`)
})

t.test('a batch destroy whose keys go only after the last event: no reservation resurrected or released in between', async (t) => {
  const batch = await salt.load.registerFakeMinions(3, '10.77.5', 'batch')
  await app.inject({ method: 'POST', url: '/resync?wait=true', headers: lab.auth })
  t.ok(batch.every((id) => ledger.has(id)))
  for (const id of batch) await salt.load.fireCloudEvents('destroyed', 1, id)
  const held: boolean[] = []
  const watch = setInterval(() => { held.push(batch.every((id) => ledger.has(id))) }, 20)
  // A resync in between, as a reconcile or another event would run.
  await app.inject({ method: 'POST', url: '/resync?wait=true', headers: lab.auth })
  await new Promise((resolve) => setTimeout(resolve, 2000))
  clearInterval(watch)
  t.ok(held.length > 50 && held.every(Boolean), 'every reservation held until the keys went')
  await salt.deleteKeys(batch)
  await waitFor('the batch released', () => batch.every((id) => !ledger.has(id)), 20_000, 10)
  await app.inject({ method: 'POST', url: '/resync?wait=true', headers: lab.auth })
  t.ok(batch.every((id) => !ledger.has(id)), 'and not brought back by a sync after')
})

t.test('a hostile publish through the real master: saltmasq.publish refuses a directive before anything is written or checked', async (t) => {
  await lab.syncModules()
  const conf = lab.dns.reservationsConf
  const before = await readFile(conf, 'utf8').catch(() => null)
  const content = '# x\nconf-script=/bin/sh -c "touch /tmp/saltmasq-pwned"\n'
  const hash = createHash('sha256').update(content).digest('hex')
  const ret = await salt.saltFailing(['dns-host', 'saltmasq.publish', JSON.stringify([{ role: 'reservations-conf', hash, content }]), 'apply=checked-restart']) as Record<string, unknown>
  // A refusal is raised, as Salt's own modules raise theirs: the minion returns it as an ERROR string.
  t.match(ret['dns-host'], /^ERROR: refused reservations-conf: line 2 is not a reservations-conf reservation line.*nothing was written/)
  t.equal(await readFile(conf, 'utf8').catch(() => null), before, 'the conf-dir file is as it was')
  t.notOk(await readFile('/tmp/saltmasq-pwned').then(() => true, () => false), 'and nothing ran')
})
