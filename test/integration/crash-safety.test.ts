// Crash safety and graceful shutdown of the real process (dist/src/server.js) against a
// loopback salt-api: SIGKILL at random moments during more than 100 syncs must never leave a
// torn file or lose a confirmed reservation; SIGTERM finishes the sync in flight, then exits.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { LineRenderer } from '../../src/dnsmasq/lines.js'
import type { Reservation } from '../../src/ledger/ledger.js'
import { sleep, waitFor } from '../../lab/processes.js'
import { SaltApiStandIn } from '../../lab/salt-api-standin.js'
import { SaltmasqProcess } from '../../lab/saltmasq-process.js'

const TOKEN = 'crash-safety-webhook-token-0123456789abcdef'
const BASE = 1500
const PER_STEP = 3
const KILLS = 100

const ipOf = (k: number) => `10.${Math.floor(k / 250)}.0.${(k % 250) + 1}`
let step = 0
const mine = () => Object.fromEntries(Array.from({ length: BASE + step * PER_STEP }, (_, k) => [`vm${k}`, [ipOf(k)]]))

const salt = await SaltApiStandIn.listening(mine)
const dir = await mkdtemp(join(tmpdir(), 'smq-crash-'))
t.teardown(async () => {
  await salt.close()
  await rm(dir, { recursive: true, force: true })
})
const files = { dhcpHosts: join(dir, 'dhcp-hosts'), addnHosts: join(dir, 'addn-hosts'), state: join(dir, 'state.json') }
const env = {
  ...salt.env,
  WEBHOOK_TOKEN: TOKEN,
  MANAGED_SUBNETS: '10.0.0.0/8',
  RESERVATIONS_FORMAT: 'hostsfile',
  DHCP_HOSTSFILE: files.dhcpHosts,
  ADDN_HOSTS_FILE: files.addnHosts,
  DHCP_HOSTSDIR: join(dir, 'dhcp-hosts.d'),
  DNS_HOSTSDIR: join(dir, 'hosts.d'),
  DNS_DOMAIN: 'lab',
  STATE_FILE: files.state,
  DNSMASQ_MINION: 'dns',
  RECONCILE_INTERVAL_S: '0',
  LOG_LEVEL: 'warn',
}

/** The files a complete sync at mine size n writes: the only contents a file may ever have. */
function versionsAt(n: number): { dhcpHosts: string, addnHosts: string } {
  const stamp = '2026-01-01T00:00:00.000Z'
  const list: Reservation[] = Array.from({ length: n }, (_, k) => ({ minionId: `vm${k}`, ip: ipOf(k), firstSeen: stamp, lastSeen: stamp }))
  return new LineRenderer({ domain: 'lab' }).hostsFiles(list)
}
const validVersions = { dhcpHosts: new Set<string>(), addnHosts: new Set<string>() }
let allowed = -1
function allowUpTo(steps: number): void {
  for (let s = allowed + 1; s <= steps; s++) {
    const v = versionsAt(BASE + s * PER_STEP)
    validVersions.dhcpHosts.add(v.dhcpHosts)
    validVersions.addnHosts.add(v.addnHosts)
  }
  allowed = Math.max(allowed, steps)
}

t.test(`SIGKILL at random moments during syncs, ${KILLS} times: every file whole, no confirmed reservation lost`, async (t) => {
  const confirmed = new Map<string, string>()
  // The event stream's connect runs a sync at once: the mine as it is at start is a version too.
  allowUpTo(0)
  let torn = 0
  let lost = 0
  for (let i = 0; i < KILLS; i++) {
    const svc = await SaltmasqProcess.start(env, join(dir, 'saltmasq.log'))
    // After the restart: check what the killed process left behind.
    const state = JSON.parse(await readFile(files.state, 'utf8').catch(() => '{"version":1,"reservations":[]}')) as { reservations: Reservation[] }
    const held = new Map(state.reservations.map((r) => [r.minionId, r.ip]))
    for (const [id, ip] of confirmed) if (held.get(id) !== ip) lost++
    for (const role of ['dhcpHosts', 'addnHosts'] as const) {
      const text = await readFile(files[role], 'utf8').catch(() => null)
      if (text !== null && !validVersions[role].has(text)) {
        torn++
        const lines = text.split('\n')
        t.comment(`${role} is no version a sync could write: ${lines.length} lines, ending ${JSON.stringify(lines.slice(-3))}; allowed up to ${BASE + allowed * PER_STEP}`)
      }
    }
    const listed = (await svc.request('GET', '/reservations')).body as { reservations: Reservation[] }
    for (const [id, ip] of confirmed) if (!listed.reservations.some((r) => r.minionId === id && r.ip === ip)) lost++

    // One confirmed sync, then a burst of syncs with a growing mine, killed at a random moment.
    step++
    allowUpTo(step + 3)
    const done = await svc.request('POST', '/resync?wait=true')
    // What GET /reservations lists is saved (the ledger in memory is replaced only once the
    // state file holds it), whichever sync made it: this one, or the one the event stream's
    // connect ran.
    if (done.status === 200) for (const r of ((await svc.request('GET', '/reservations')).body as { reservations: Reservation[] }).reservations) confirmed.set(r.minionId, r.ip)
    for (let k = 0; k < 3; k++) {
      step++
      void svc.request('POST', '/resync')
    }
    await sleep(Math.floor(Math.random() * 40))
    await svc.kill('SIGKILL')
  }
  t.equal(torn, 0, 'no torn dnsmasq file after any kill')
  t.equal(lost, 0, 'no confirmed reservation lost after any kill')
  t.ok(confirmed.size >= BASE, `${confirmed.size} reservations confirmed across ${KILLS} kills`)
  t.comment(`${KILLS} SIGKILLs survived; ${confirmed.size} confirmed reservations checked after each restart`)
})

t.test('SIGTERM finishes the sync in flight, then exits cleanly and stops accepting hooks', async (t) => {
  const slow = await SaltApiStandIn.listening({ late: ['10.9.9.9'] }, { applyDelayMs: 1500 })
  t.teardown(async () => { await slow.close() })
  // An addition that needs an apply: the SIGHUP path (with delta files it needs none).
  const svc = await SaltmasqProcess.start({ ...env, ...slow.env, HOSTSFILE_DELTAS: 'false' }, join(dir, 'sigterm.log'))
  void svc.request('POST', '/resync')
  await waitFor('the apply to be in flight', () => slow.counts.local > 0, 10_000, 10)
  const exited = svc.kill('SIGTERM')
  await sleep(200)
  t.not((await svc.request('POST', '/hooks/salt', { tag: 'salt/cloud/x/created' })).status, 202, 'no hook accepted while shutting down')
  t.equal(await exited, 0, 'clean exit')
  t.equal(slow.localDone, 1, 'the apply in flight was finished before exit')
  t.match(await readFile(files.dhcpHosts, 'utf8'), /^late,10\.9\.9\.9$/m)
  const state = JSON.parse(await readFile(files.state, 'utf8')) as { reservations: Reservation[] }
  t.ok(state.reservations.some((r) => r.minionId === 'late'), 'state saved')
})
