// DNSMASQ_PUBLISH=salt against dnsmasq minions held in memory: whole files once, then deltas;
// a minion that is down, fails its apply or was hand-edited is behind, reported, and caught up
// while the others go on; the record of who holds what survives a restart and a crash mid-call.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { pino } from 'pino'
import { loadConfig } from '../../src/config/index.js'
import { LineRenderer } from '../../src/dnsmasq/lines.js'
import { openPublisher } from '../../src/dnsmasq/open-publisher.js'
import type { Publisher } from '../../src/dnsmasq/publisher.js'
import type { Reservation } from '../../src/ledger/reservation.js'
import { FakeDnsmasqMinions } from '../helpers/fake-dnsmasq-minions.js'

const DHCP_PATH = '/etc/dnsmasq.saltmasq/dhcp-hosts'
const ADDN_PATH = '/etc/dnsmasq.saltmasq/addn-hosts'
// The minions know the files by role (the module sets each role's path itself).
const DHCP = 'dhcp-hosts'
const ADDN = 'addn-hosts'

/** `n` machines, and `extra` ones after them; a machine's address never depends on the others. */
function fleet(n: number, extra: string[] = []): Reservation[] {
  const at = (i: number, net: number): string => `10.${net + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`
  const machines = [
    ...Array.from({ length: n }, (_, i) => ({ minionId: `vm${String(i).padStart(6, '0')}`, ip: at(i, 1) })),
    ...extra.map((minionId, i) => ({ minionId, ip: at(i, 200) })),
  ]
  return machines.sort((a, b) => a.minionId < b.minionId ? -1 : 1).map((m) => ({ ...m, firstSeen: '2026-11-26T00:00:00.000Z', lastSeen: '2026-11-26T00:00:00.000Z' }))
}

async function setup(t: Test, ids = ['dns-a', 'dns-b'], env: Record<string, string> = {}) {
  const dir = t.testdir()
  const minions = new FakeDnsmasqMinions(ids)
  let now = Date.parse('2026-11-26T05:00:00Z')
  const config = loadConfig({
    SALT_API_URL: 'http://salt.invalid:8000', SALT_API_USER: 'u', SALT_API_PASSWORD: 'p', WEBHOOK_TOKEN: 'x'.repeat(32), MANAGED_SUBNETS: '10.0.0.0/8',
    DHCP_HOSTSFILE: DHCP_PATH, ADDN_HOSTS_FILE: ADDN_PATH, STATE_FILE: join(dir, 'state.json'),
    DNSMASQ_PUBLISH: 'salt', DNSMASQ_MINION: 'dns-*', DNSMASQ_RELEASE_FUNCTION: '',
    ...env,
  })
  const open = async (): Promise<Publisher> => await openPublisher({ config, client: minions, logger: pino({ level: 'silent' }), clock: () => now })
  return { minions, dir, open, tick: (ms: number) => { now += ms }, config }
}

function holds(minions: FakeDnsmasqMinions, id: string, rs: Reservation[]): boolean {
  const want = new LineRenderer().hostsFiles(rs)
  const m = minions.minion(id)
  return m.files.get(DHCP) === want.dhcpHosts && m.files.get(ADDN) === want.addnHosts
}

t.test('whole files once, then an addition at 5,000 reservations is a delta of well under 2 KB to every minion', async (t) => {
  const { minions, open } = await setup(t)
  const publisher = await open()
  const base = fleet(5000)
  const first = await publisher.publish(base)
  t.ok(holds(minions, 'dns-a', base) && holds(minions, 'dns-b', base), 'both minions hold the files')
  t.same(first.filesChanged, [ADDN_PATH, DHCP_PATH])
  t.equal(first.applied, true)
  t.same(first.dnsmasqMinions.map((m) => [m.minion, m.state]), [['dns-a', 'current'], ['dns-b', 'current']])
  t.equal(minions.calls.length, 1, 'no minion confirmed anything yet: one call with the files whole')
  t.ok(first.bytesSent > 20_000, `whole files, compressed: ${first.bytesSent} bytes`)

  const next = fleet(5000, ['new-machine'])
  const second = await publisher.publish(next)
  t.ok(holds(minions, 'dns-a', next) && holds(minions, 'dns-b', next))
  t.equal(minions.calls.length, 2, 'one call')
  t.same({ target: minions.calls[1]!.target, tgtType: minions.calls[1]!.tgtType }, { target: 'dns-*', tgtType: 'glob' }, 'to the configured target')
  t.ok(second.bytesSent < 2048, `one addition sent ${second.bytesSent} bytes`)
  t.ok(minions.calls[1]!.files.every((f) => f.deflate === undefined), 'no file sent whole')
  t.equal(minions.minion('dns-a').applies, 2)

  const quiet = await publisher.publish(next)
  t.same(quiet.filesChanged, [])
  t.equal(quiet.applied, false, 'nothing changed: no apply anywhere')
  t.ok(quiet.bytesSent < 600, `an empty delta (${quiet.bytesSent} bytes) still checks what every minion holds`)
})

t.test('a minion that is down is behind, reported, and caught up when it is back; the other is not held back', async (t) => {
  const { minions, open, tick } = await setup(t)
  const publisher = await open()
  await publisher.publish(fleet(100))
  minions.minion('dns-b').up = false
  tick(1000)
  const down = await publisher.publish(fleet(100, ['while-b-was-down']))
  t.ok(holds(minions, 'dns-a', fleet(100, ['while-b-was-down'])), 'dns-a is updated')
  t.match(down.dnsmasqMinions, [{ minion: 'dns-a', state: 'current' }, { minion: 'dns-b', state: 'behind', reason: 'Minion did not return. [Not connected]', behindSince: '2026-11-26T05:00:01.000Z' }])
  t.ok(down.applyDueInMs !== null && down.applyDueInMs >= 1000, 'a catch-up sync is asked for')
  t.equal(publisher.owed, null, 'one dnsmasq holds the reservations: nothing is owed')
  tick(1000)
  const still = await publisher.publish(fleet(100, ['while-b-was-down', 'again']))
  t.equal(still.dnsmasqMinions[1]!.behindSince, '2026-11-26T05:00:01.000Z', 'behind since the first call it missed')

  minions.minion('dns-b').up = true
  const applies = minions.minion('dns-b').applies
  const back = await publisher.publish(fleet(100, ['while-b-was-down', 'again']))
  t.ok(holds(minions, 'dns-b', fleet(100, ['while-b-was-down', 'again'])), 'dns-b is caught up')
  t.equal(minions.minion('dns-b').applies, applies + 1, 'and its dnsmasq told')
  t.same(back.dnsmasqMinions.map((m) => m.state), ['current', 'current'])
  t.equal(back.applyDueInMs, null)
})

t.test('a hand-edited file is put right, and a failed apply is made again at the next sync', async (t) => {
  const { minions, open } = await setup(t)
  const publisher = await open()
  const rs = fleet(50)
  await publisher.publish(rs)
  minions.minion('dns-a').files.set(DHCP, `${minions.minion('dns-a').files.get(DHCP)!}aa:bb:cc:dd:ee:ff,10.9.9.9,intruder\n`)
  const fixed = await publisher.publish(rs)
  t.ok(holds(minions, 'dns-a', rs), 'the edit is gone')
  t.same(fixed.filesChanged, [DHCP_PATH])
  t.ok(minions.calls.at(-1)!.files.some((f) => f.deflate !== undefined), 'sent whole to the edited minion')
  t.equal(minions.calls.at(-1)!.target, 'dns-a')

  minions.minion('dns-b').failApply = 'cannot signal dnsmasq pid 4242'
  const failed = await publisher.publish(fleet(50, ['x1']))
  t.match(failed.dnsmasqMinions[1], { minion: 'dns-b', state: 'behind', reason: 'cannot signal dnsmasq pid 4242' })
  minions.minion('dns-b').failApply = null
  const applies = minions.minion('dns-b').applies
  const retried = await publisher.publish(fleet(50, ['x1']))
  t.equal(minions.minion('dns-b').applies, applies + 1, 'the owed apply is made with no file to change')
  t.equal(minions.calls.at(-1)!.forceApply, true)
  t.equal(minions.calls.at(-1)!.target, 'dns-b', 'only to the minion that owed it')
  t.same(retried.dnsmasqMinions.map((m) => m.state), ['current', 'current'])
})

t.test('no dnsmasq minion holding the reservations is a failed sync, and /ready-level owed', async (t) => {
  const { minions, open } = await setup(t)
  const publisher = await open()
  await publisher.publish(fleet(10))
  for (const m of minions.minions.values()) m.up = false
  await t.rejects(publisher.publish(fleet(10, ['lonely'])), { code: 'SALTMASQ_NO_DNSMASQ_MINION_CURRENT', message: /dns-a: Minion did not return\. \[Not connected\]; dns-b: Minion did not return/ })
  t.match(publisher.owed, { need: 'apply', paced: false })
  const none = await setup(t, [])
  await t.rejects((await none.open()).publish(fleet(1)), { code: 'SALTMASQ_APPLY_NO_MINION' })
})

t.test('after a restart the next addition is still a delta, and a crash mid-call leaves the apply owed', async (t) => {
  const { minions, open, dir } = await setup(t)
  const first = await open()
  await first.publish(fleet(2000))
  const record = (JSON.parse(await readFile(join(dir, 'state.json.minions'), 'utf8')) as { minions: Record<string, { applyOwed: boolean }> }).minions
  t.same(Object.keys(record), ['dns-a', 'dns-b'])
  t.equal(record['dns-a']!.applyOwed, false)

  const restarted = await open()
  restarted.remember(fleet(2000))
  const r = await restarted.publish(fleet(2000, ['after-restart']))
  t.ok(r.bytesSent < 2048, `a delta after the restart: ${r.bytesSent} bytes`)

  // The minions write and reload, then saltmasq dies before it hears back.
  minions.afterCall = () => { throw new Error('killed mid-call') }
  await t.rejects((await open()).publish(fleet(2000, ['after-restart', 'mid-crash'])))
  minions.afterCall = null
  const owedOnDisk = (JSON.parse(await readFile(join(dir, 'state.json.minions'), 'utf8')) as { minions: Record<string, { applyOwed: boolean }> }).minions
  t.equal(owedOnDisk['dns-a']!.applyOwed, true, 'marked before the call')
  const applies = minions.minion('dns-a').applies
  const after = await open()
  after.remember(fleet(2000, ['after-restart']))
  await after.publish(fleet(2000, ['after-restart', 'mid-crash']))
  t.equal(minions.minion('dns-a').applies, applies + 1, 'dnsmasq is told again although its files were already right')
})

t.test('a dnsmasq minion that no longer matches the target is forgotten, not reported behind for ever', async (t) => {
  const { minions, open } = await setup(t, ['dns-a', 'dns-b', 'old-dns'], { DNSMASQ_MINION: '*dns*' })
  const publisher = await open()
  await publisher.publish(fleet(5))
  t.same(publisher.dnsmasqMinions.map((m) => m.minion), ['dns-a', 'dns-b', 'old-dns'])
  minions.minions.delete('old-dns')
  const r = await publisher.publish(fleet(5, ['x']))
  t.same(r.dnsmasqMinions.map((m) => [m.minion, m.state]), [['dns-a', 'current'], ['dns-b', 'current']])
  t.equal(r.applyDueInMs, null)
})

t.test('salt publishing refuses the hostsdir format, and conf is checked then restarted on the minion', async (t) => {
  t.throws(() => loadConfig({ SALT_API_URL: 'http://s:8000', SALT_API_USER: 'u', SALT_API_PASSWORD: 'p', WEBHOOK_TOKEN: 'x'.repeat(32), MANAGED_SUBNETS: '10.0.0.0/8', DNSMASQ_MINION: 'd', DNSMASQ_PUBLISH: 'salt', RESERVATIONS_FORMAT: 'hostsdir' }), { code: 'SALTMASQ_BAD_CONFIG', message: /DNSMASQ_PUBLISH: salt publishing takes RESERVATIONS_FORMAT hostsfile or conf/ })
  const { minions, open } = await setup(t, ['dns-a'], { RESERVATIONS_FORMAT: 'conf', RESERVATIONS_FILE: '/etc/dnsmasq.d/reservations.conf', DNSMASQ_MINION_TGT_TYPE: 'list', DNSMASQ_MINION: 'dns-a' })
  const publisher = await open()
  await publisher.publish(fleet(3))
  t.match(minions.minion('dns-a').files.get('reservations-conf'), /^dhcp-host=vm000000,10\.1\.0\.0$/m)
  t.equal(minions.calls[0]!.tgtType, 'list')
  const diff = await publisher.preview(fleet(3, ['zz']))
  t.same(diff, { files: [{ path: '/etc/dnsmasq.saltmasq/../dnsmasq.d/reservations.conf'.replace('/dnsmasq.saltmasq/..', ''), added: ['dhcp-host=zz,10.200.0.0'], removed: [] }], apply: 'checked-apply' })
})
