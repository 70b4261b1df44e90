// The hostsfile format's delta files: additions as one new file in the dhcp-hostsdir and no
// apply; removals, changes and too many deltas compacted into the base with one paced apply;
// the base and the deltas read back together (a lost ledger is rebuilt from both).
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileEnv } from '../helpers/file-env.js'
import t, { type Test } from 'tap'
import { pino } from 'pino'
import { loadConfig } from '../../src/config/index.js'
import { DELTA_BOUNDS } from '../../src/dnsmasq/formats/hostsfile.js'
import { bodyLines, HEADER } from '../../src/dnsmasq/lines.js'
import { openPublisher } from '../../src/dnsmasq/open-publisher.js'
import type { Reservation } from '../../src/ledger/reservation.js'

const at = '2026-11-26T00:00:00.000Z'
const r = (minionId: string, ip: string, mac?: string): Reservation => ({
  minionId,
  ip,
  ...(mac === undefined ? {} : { mac }),
  firstSeen: at,
  lastSeen: at,
})
const sorted = (rs: Reservation[]): Reservation[] => [...rs].sort((a, b) => (a.minionId < b.minionId ? -1 : 1))

async function setup(t: Test, env: Record<string, string> = {}) {
  const dir = t.testdir({ 'dhcp-hosts.d': {}, 'hosts.d': {} })
  let now = 1_000_000
  const applies: number[] = []
  const config = loadConfig({
    SALT_API_URL: 'http://salt.invalid:8000',
    SALT_API_USER: 'u',
    SALT_API_PASSWORD: 'p',
    WEBHOOK_TOKEN: 'x'.repeat(32),
    MANAGED_SUBNETS: '10.0.0.0/8',
    ...fileEnv(dir),
    DNSMASQ_MINION: 'dns',
    DNSMASQ_RELEASE_FUNCTION: '',
    RELOAD_MIN_INTERVAL_S: '30',
    DNS_DOMAIN: 'lab',
    ...env,
  })
  const client = {
    local: async () => {
      applies.push(now)
      return { dns: true }
    },
  }
  const open = async () => await openPublisher({ config, client, logger: pino({ level: 'silent' }), clock: () => now })
  // The delta files that hold a reservation: a compaction empties them, keeping their names.
  const deltaFiles = async (sub = 'dhcp-hosts.d'): Promise<string[]> => {
    const names = (await readdir(join(dir, sub))).sort()
    const held = await Promise.all(names.map(async (n) => bodyLines(await readFile(join(dir, sub, n), 'utf8')).length > 0))
    return names.filter((_, i) => held[i])
  }
  return {
    dir,
    applies,
    open,
    deltaFiles,
    tick: (ms: number) => {
      now += ms
    },
    read: async (name: string) => await readFile(join(dir, name), 'utf8'),
  }
}

t.test('a first sync writes the base with one apply; additions then go as delta files with none', async (t) => {
  const { applies, open, deltaFiles, read, dir } = await setup(t)
  const p = await open()
  const fleet = [r('a01', '10.0.0.1'), r('b01', '10.0.0.2')]
  const first = await p.publish(fleet)
  t.equal(first.applied, true, 'no base yet: written whole and applied')
  t.match(await read('dhcp-hosts'), /a01,10\.0\.0\.1\nb01,10\.0\.0\.2\n$/)
  t.same(await deltaFiles(), [])

  const added = await p.publish(sorted([...fleet, r('c01', '10.0.0.3'), r('aa01', '10.0.0.4')]))
  t.equal(added.applied, false, 'dnsmasq is told nothing')
  t.equal(added.applyDueInMs, null)
  t.same(added.filesChanged, [join(dir, 'dhcp-hosts.d', 'delta-000001'), join(dir, 'hosts.d', 'delta-000001')])
  t.match(
    await read('hosts.d/delta-000001'),
    /^# Managed by saltmasq.*\n10\.0\.0\.4 aa01 aa01\.lab\n10\.0\.0\.3 c01 c01\.lab\n$/,
    'a small fleet: the names as a DNS delta file',
  )
  t.equal(added.entriesWritten, 2)
  t.same(await deltaFiles(), ['delta-000001'])
  t.match(await read('dhcp-hosts.d/delta-000001'), /^# Managed by saltmasq.*\naa01,10\.0\.0\.4\nc01,10\.0\.0\.3\n$/)
  t.notMatch(await read('dhcp-hosts'), /c01/, 'the base is untouched')
  t.notMatch(await read('addn-hosts'), /c01/, 'addn-hosts waits for the next compaction')

  const more = await p.publish(sorted([...fleet, r('c01', '10.0.0.3'), r('aa01', '10.0.0.4'), r('d01', '10.0.0.5')]))
  t.equal(more.applied, false)
  t.same(await deltaFiles(), ['delta-000001', 'delta-000002'])
  const quiet = await p.publish(sorted([...fleet, r('c01', '10.0.0.3'), r('aa01', '10.0.0.4'), r('d01', '10.0.0.5')]))
  t.same(quiet.filesChanged, [], 'nothing new: nothing written')
  t.equal(applies.length, 1)

  // A lost ledger is rebuilt from the base and the deltas together.
  const back = await p.readBack()
  t.same(
    back
      .text!.split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .sort(),
    ['a01,10.0.0.1', 'aa01,10.0.0.4', 'b01,10.0.0.2', 'c01,10.0.0.3', 'd01,10.0.0.5'],
  )
})

t.test('a removal compacts: everything into the base, the deltas gone, one apply, paced', async (t) => {
  const { applies, open, deltaFiles, read, tick, dir } = await setup(t)
  const p = await open()
  await p.publish([r('a01', '10.0.0.1'), r('b01', '10.0.0.2')])
  await p.publish([r('a01', '10.0.0.1'), r('b01', '10.0.0.2'), r('c01', '10.0.0.3')])
  t.same(await deltaFiles(), ['delta-000001'])
  tick(5000)
  const removed = await p.publish([r('a01', '10.0.0.1'), r('c01', '10.0.0.3')])
  t.equal(removed.applied, false, 'the first apply was 5 s ago: this one waits for its turn')
  t.equal(removed.applyDueInMs, 25_000)
  t.same(await deltaFiles(), [], 'the delta files are emptied at once')
  t.same(await deltaFiles('hosts.d'), [], 'the DNS ones too')
  t.same(await readdir(join(dir, 'dhcp-hosts.d')), ['delta-000001'], 'kept: dnsmasq logs the removal of a watched file as an error')
  t.equal(await readFile(join(dir, 'dhcp-hosts.d', 'delta-000001'), 'utf8'), HEADER, 'holding only the header')
  t.match(await read('dhcp-hosts'), /a01,10\.0\.0\.1\nc01,10\.0\.0\.3\n$/)
  t.match(
    await read('addn-hosts'),
    /10\.0\.0\.3 c01 c01\.lab\n$/,
    'the names of earlier additions are in addn-hosts now',
  )
  // An addition while the compaction's apply is owed: a delta file still, live at once.
  const meanwhile = await p.publish([r('a01', '10.0.0.1'), r('c01', '10.0.0.3'), r('e01', '10.0.0.6')])
  t.same(await deltaFiles(), ['delta-000001'])
  t.equal(meanwhile.applied, false)
  tick(25_000)
  const due = await p.publish([r('a01', '10.0.0.1'), r('c01', '10.0.0.3'), r('e01', '10.0.0.6')])
  t.equal(due.applied, true, 'the owed apply, at its turn')
  t.equal(applies.length, 2)
})

t.test(
  'a changed MAC compacts (dnsmasq keeps the base line over a delta with its address), and so do too many deltas, at a quiet moment',
  async (t) => {
    const { applies, open, deltaFiles, read, tick } = await setup(t, { RELOAD_MIN_INTERVAL_S: '0' })
    const p = await open()
    await p.publish([r('a01', '10.0.0.1', '02:00:00:00:00:aa')])
    const changed = await p.publish([r('a01', '10.0.0.1', '02:00:00:00:00:bb')])
    t.equal(changed.applied, true)
    t.match(await read('dhcp-hosts'), /^02:00:00:00:00:bb,10\.0\.0\.1,a01$/m)
    t.same(await deltaFiles(), [])

    const fleet = [r('a01', '10.0.0.1', '02:00:00:00:00:bb')]
    for (let i = 0; i < DELTA_BOUNDS.files; i++) {
      fleet.push(r(`n${String(i).padStart(3, '0')}`, `10.0.1.${i + 1}`))
      tick(1)
      t.equal((await p.publish(sorted(fleet))).applied, false)
    }
    t.equal((await deltaFiles()).length, DELTA_BOUNDS.files)
    fleet.push(r('busy', '10.0.2.1'))
    await p.publish(sorted(fleet))
    t.equal((await deltaFiles()).length, DELTA_BOUNDS.files + 1, 'a sync that adds is not the moment')
    const quiet = await p.publish(sorted(fleet))
    t.equal(quiet.applied, true, 'the next quiet sync compacts')
    t.same(await deltaFiles(), [])
    t.equal((await read('dhcp-hosts')).split('\n').filter((l) => /^n\d{3},/.test(l)).length, DELTA_BOUNDS.files)
    t.equal(applies.length, 3)
  },
)

t.test('a batch larger than the bounds goes into the base; HOSTSFILE_DELTAS=false applies every change', async (t) => {
  const { open, deltaFiles } = await setup(t)
  const p = await open()
  await p.publish([r('a01', '10.0.0.1')])
  const many = sorted([
    r('a01', '10.0.0.1'),
    ...Array.from({ length: DELTA_BOUNDS.lines + 1 }, (_, i) =>
      r(`m${String(i).padStart(5, '0')}`, `10.1.${i >> 8}.${i & 255}`),
    ),
  ])
  t.equal((await p.publish(many)).applied, false, 'paced: the first apply was just now')
  t.same(await deltaFiles(), [])

  const plain = await setup(t, { HOSTSFILE_DELTAS: 'false' })
  const q = await plain.open()
  await q.publish([r('a01', '10.0.0.1')])
  t.equal((await q.publish([r('a01', '10.0.0.1'), r('b01', '10.0.0.2')])).applied, true)
  t.same(await plain.deltaFiles(), [])
})

t.test('the delta directory must not hold the base files', async (t) => {
  t.throws(
    () =>
      loadConfig({
        SALT_API_URL: 'http://s:8000',
        SALT_API_USER: 'u',
        SALT_API_PASSWORD: 'p',
        WEBHOOK_TOKEN: 'x'.repeat(32),
        MANAGED_SUBNETS: '10.0.0.0/8',
        DNSMASQ_MINION: 'd',
        DHCP_HOSTSFILE: '/etc/x/dhcp-hosts',
        DHCP_HOSTSDIR: '/etc/x',
      }),
    { code: 'SALTMASQ_BAD_CONFIG', message: /DHCP_HOSTSDIR: the delta directory/ },
  )
})

t.test('a hand-written file in the delta directory is left alone and reported', async (t) => {
  const { open, dir } = await setup(t)
  await writeFile(join(dir, 'dhcp-hosts.d', 'mine'), 'aa:bb:cc:dd:ee:ff,10.9.9.9,printer\n')
  const p = await open()
  const out = await p.publish([r('a01', '10.0.0.1')])
  t.same(out.unownedFiles, [join(dir, 'dhcp-hosts.d', 'mine')])
})

t.test(
  'above 10,000 reservations a new name waits for its lease and the next compaction: no DNS delta file',
  async (t) => {
    const { open, dir } = await setup(t)
    const p = await open()
    const fleet = Array.from({ length: 10_000 }, (_, i) =>
      r(`m${String(i).padStart(5, '0')}`, `10.1.${i >> 8}.${i & 255}`),
    )
    await p.publish(fleet)
    const out = await p.publish([...fleet, r('zz01', '10.2.0.1')])
    t.same(out.filesChanged, [join(dir, 'dhcp-hosts.d', 'delta-000001')])
    t.same(await readdir(join(dir, 'hosts.d')), [])
  },
)
