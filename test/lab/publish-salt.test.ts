// DNSMASQ_PUBLISH=salt with every part real: two sites, each a host in its own network namespace
// with its own subnet, its own dnsmasq (DHCP and DNS) and its own salt-minion; saltmasq runs on
// the master's host, as an unprivileged user that cannot write either dnsmasq's files, and
// reaches both dnsmasqs only through salt-api (saltmasq.publish). Both dnsmasq hosts keep their
// files at one path, as real hosts would: each host sees its own directory there (a bind mount
// for its minion and its dnsmasq). Scenarios run in order; everything is torn down at the end.
import { randomBytes } from 'node:crypto'
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { DhcpDnsmasq } from '../../lab/dhcp-dnsmasq.js'
import { MASTER_IP, NetLab, type Machine, type Namespace } from '../../lab/netns.js'
import { run, waitFor } from '../../lab/processes.js'
import { SaltLab } from '../../lab/salt-lab.js'
import { SaltmasqProcess } from '../../lab/saltmasq-process.js'

interface Reservation {
  minionId: string
  ip: string
}
interface MinionStatus {
  minion: string
  state: string
  behindSince: string | null
  reason: string | null
}

/** saltmasq's user in this lab: nobody, who owns nothing but saltmasq's state directory. */
const NOBODY = 65534

const token = randomBytes(24).toString('hex')
// A short root: Salt's unix sockets live under the lab's directories.
const tmp = await mkdtemp(join(tmpdir(), 'smq-pub-'))
// saltmasq's user must reach its state directory below this one.
await chmod(tmp, 0o711)
let net: NetLab | undefined
let salt: SaltLab | undefined
const sites: Site[] = []
let svc: SaltmasqProcess | undefined

t.teardown(async () => {
  await svc?.stop()
  await salt?.stop()
  for (const site of sites) await site.dns.stop()
  await net?.destroy()
  if (process.env.SALTMASQ_KEEP_LAB === undefined) await rm(tmp, { recursive: true, force: true })
})

/** The path every dnsmasq host keeps saltmasq's files at (each host sees its own directory there). */
const published = join(tmp, 'published')

interface Site {
  name: string
  ns: Namespace
  gateway: string
  dns: DhcpDnsmasq
  /** The directory this host sees at `published`. */
  own: string
}

async function addSite(name: string, labIp: string, subnet: string): Promise<Site> {
  const gateway = `${subnet}.1`
  const ns = await net!.addSegment(labIp, gateway)
  const own = join(tmp, name, 'hosts')
  await mkdir(own, { recursive: true })
  const dns = new DhcpDnsmasq(ns, join(tmp, name, 'dnsmasq'), [own, published])
  await dns.writeConfig({ first: `${subnet}.100`, last: `${subnet}.109` }, 'lab')
  const site = { name, ns, gateway, dns, own }
  sites.push(site)
  return site
}

function randomMac(): string {
  return ['02', ...[...randomBytes(5)].map((b) => b.toString(16).padStart(2, '0'))].join(':')
}

net = await NetLab.create(tmp)
await mkdir(published)
const siteA = await addSite('dns-a', '10.99.0.11', '10.98.1')
const siteB = await addSite('dns-b', '10.99.0.12', '10.98.2')

const dnsMinion = (site: Site): Parameters<SaltLab['startMinion']>[0] => ({
  id: site.name,
  ips: ['127.0.0.1'],
  netns: site.ns,
  bindMount: [site.own, published],
  // The module writes only the paths set for its roles; pid and lease file are this host's dnsmasq's.
  extraConfig: [
    'saltmasq:', '  dnsmasq:', '    files:', `      dhcp-hosts: ${join(published, 'dhcp-hosts')}`,
    `      addn-hosts: ${join(published, 'addn-hosts')}`, `    pidfile: ${site.dns.pidFile}`,
    `    leasefile: ${site.dns.leaseFile}`, '    reload: pidfile',
  ],
})

salt = await SaltLab.start({
  masterNetns: net.master,
  masterAddress: MASTER_IP,
  minions: [dnsMinion(siteA), dnsMinion(siteB)],
  webhookUrl: 'http://127.0.0.1:18081/hooks/salt',
  webhookToken: token,
  // Exactly what salt publishing calls: no file.*, no cmd.*.
  grants: [{ target: 'dns-*', functions: ['saltmasq.publish', 'saltmasq.release_lease'] }],
})

// Each host's dnsmasq is pointed at the files by the project's state, run by its own minion.
for (const site of sites) {
  const pillar = {
    saltmasq: {
      dnsmasq: { format: 'hostsfile', conf_dir: site.dns.confDir, hosts_dir: published, manage_service: false },
    },
  }
  const applied = (await salt.salt([
    site.name, 'state.apply', 'saltmasq.dnsmasq', `pillar=${JSON.stringify(pillar)}`,
  ])) as Record<string, Record<string, { result: boolean }>>
  const results = Object.values(applied[site.name] ?? {})
  if (results.length === 0 || !results.every((s) => s.result))
    throw new Error(`saltmasq.dnsmasq state failed on ${site.name}: ${JSON.stringify(applied)}`)
  await site.dns.start()
}

const state = join(tmp, 'saltmasq')
await mkdir(state)
await chown(state, NOBODY, NOBODY)
const svcEnv = {
  ...salt.saltApiEnv,
  PORT: '18081',
  WEBHOOK_TOKEN: token,
  // The per-minion metrics name minions: only behind a token.
  METRICS_TOKEN: token,
  MANAGED_SUBNETS: '10.98.1.0/24,10.98.2.0/24',
  RESERVATIONS_FORMAT: 'hostsfile',
  DNSMASQ_PUBLISH: 'salt',
  DNSMASQ_MINION: 'dns-*',
  DHCP_HOSTSFILE: join(published, 'dhcp-hosts'),
  ADDN_HOSTS_FILE: join(published, 'addn-hosts'),
  DNS_DOMAIN: 'lab',
  STATE_FILE: join(state, 'state.json'),
  DNSMASQ_RELEASE_ARGS: JSON.stringify(['interface=br0']),
  LOG_LEVEL: 'info',
}
svc = await SaltmasqProcess.start(svcEnv, join(tmp, 'saltmasq.log'), net.master, NOBODY)

async function reservations(): Promise<Reservation[]> {
  return (await svc!.request('GET', '/reservations')).body.reservations as Reservation[]
}

async function minions(): Promise<MinionStatus[]> {
  return (await svc!.request('GET', '/reservations')).body.dnsmasqMinions as MinionStatus[]
}

/** The DHCP lines a site's dnsmasq is given. */
async function dhcpLines(site: Site): Promise<string[]> {
  return (await readFile(join(site.own, 'dhcp-hosts'), 'utf8').catch(() => ''))
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
}

/** What every site must hold: one line per reservation saltmasq has, nothing else. */
async function expectedLines(): Promise<string[]> {
  return (await reservations()).map((r) => `${r.minionId},${r.ip}`).sort()
}

/** A machine on a site: dynamic address from that site's dnsmasq, then a minion whose mine reports it. */
async function boot(name: string, site: Site): Promise<{ machine: Machine, ip: string }> {
  const machine = await net!.addMachine(name, site.ns)
  const ip = await machine.dhcp()
  await salt!.startMinion({ id: name, ips: [ip], netns: net!.master })
  await salt!.waitForMinions([name])
  await salt!.refreshMine([name])
  return { machine, ip }
}

async function created(name: string): Promise<void> {
  await salt!.fireEvent(`salt/cloud/${name}/created`, { name, event: 'created instance' })
  await waitFor(`${name} reserved`, async () => (await reservations()).some((r) => r.minionId === name), 60_000, 100)
}

const first = await svc.request('POST', '/resync?wait=true')
if (first.status !== 200) throw new Error(`first resync failed: ${JSON.stringify(first.body)}`)

let a1: { machine: Machine, ip: string }
let b1: { machine: Machine, ip: string }

t.test('saltmasq runs unprivileged and cannot write either dnsmasq host\'s files', async (t) => {
  for (const site of sites) {
    const probe = await run('setpriv', [
      `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'sh', '-c', `: > ${join(site.own, 'dhcp-hosts')}`,
    ])
    t.not(probe.code, 0, `${site.name}: saltmasq's user cannot write its dhcp-hosts`)
  }
  const status = await run('ps', ['-o', 'uid=', '-p', String(svc!.pid)])
  t.equal(Number(status.stdout.trim()), NOBODY, 'saltmasq runs as nobody')
  t.same(
    (await minions()).map((m) => [m.minion, m.state]),
    [
      ['dns-a', 'current'],
      ['dns-b', 'current'],
    ],
  )
})

t.test(
  'new machines on each site get their reserved address from their own dnsmasq, and every name resolves at both',
  async (t) => {
    a1 = await boot('site-a-web', siteA)
    b1 = await boot('site-b-web', siteB)
    t.match(a1.ip, /^10\.98\.1\.10\d$/, 'site A hands out its own pool')
    t.match(b1.ip, /^10\.98\.2\.10\d$/, 'site B hands out its own pool')
    await created('site-a-web')
    await created('site-b-web')
    const want = await expectedLines()
    t.same(want, [`site-a-web,${a1.ip}`, `site-b-web,${b1.ip}`])
    for (const site of sites) {
      await waitFor(
        `${site.name} to hold both reservations`,
        async () => JSON.stringify((await dhcpLines(site)).sort()) === JSON.stringify(want),
        30_000,
        100,
      )
      t.pass(`${site.name} holds both reservations`)
    }
    // Lease released, new MAC, no address: only the reservation by name gives it that address back.
    for (const [m, site] of [
      [a1, siteA],
      [b1, siteB],
    ] as const) {
      await site.ns.mustRun('dhcp_release', ['br0', m.ip, await m.machine.mac()])
      await waitFor(
        `${m.machine.hostname}'s lease gone`,
        async () => !(await site.dns.leases()).some((l) => l.ip === m.ip),
        10_000,
        50,
      )
      await m.machine.setMac(randomMac())
      await m.machine.flushAddress()
      t.equal(await m.machine.dhcp(), m.ip, `${m.machine.hostname} gets its reserved address again with a new MAC`)
      t.match(
        await site.dns.log(),
        new RegExp(`DHCPACK\\(br0\\) ${m.ip.replaceAll('.', '\\.')} [0-9a-f:]+ ${m.machine.hostname}`),
      )
    }
    for (const [m, site] of [
      [a1, siteA],
      [b1, siteB],
    ] as const) {
      t.same(await m.machine.resolve('site-a-web.lab', site.gateway), [a1.ip], `site-a-web resolves at ${site.name}`)
      t.same(await m.machine.resolve('site-b-web.lab', site.gateway), [b1.ip], `site-b-web resolves at ${site.name}`)
    }
  },
)

t.test(
  'with one dnsmasq minion stopped the other keeps being updated, and the stopped one catches up when it is back',
  async (t) => {
    await salt!.stopMinion('dns-b')
    const late = await boot('site-a-late', siteA)
    await created('site-a-late')
    await waitFor(
      'dns-a to hold site-a-late',
      async () => (await dhcpLines(siteA)).includes(`site-a-late,${late.ip}`),
      30_000,
      100,
    )
    t.same(await a1.machine.resolve('site-a-late.lab', siteA.gateway), [late.ip], 'site A resolves the new machine')
    t.notOk(
      (await dhcpLines(siteB)).some((l) => l.startsWith('site-a-late,')),
      'site B, stopped, does not have it yet',
    )
    // dns-a has the file at once; the sync ends when the master stops waiting for dns-b.
    const behind = await waitFor(
      'dns-b reported behind',
      async () => (await minions()).find((m) => m.minion === 'dns-b' && m.state === 'behind'),
      30_000,
      100,
    )
    t.match(behind, { state: 'behind', reason: /Minion did not return. \[Not connected\]|did not answer/ })
    t.ok(
      behind?.behindSince !== null && Date.parse(behind!.behindSince) > Date.now() - 120_000,
      `behind since ${behind?.behindSince}`,
    )
    const ready = await svc!.request('GET', '/ready')
    t.equal(ready.status, 200, 'one dnsmasq holds the reservations: saltmasq stays ready')
    t.match(ready.body.detail.dnsmasqMinions, [
      { minion: 'dns-a', state: 'current' },
      { minion: 'dns-b', state: 'behind' },
    ])
    const metrics = (await svc!.request('GET', '/metrics')).body as string
    t.match(metrics, /saltmasq_dnsmasq_minion_behind_since_timestamp_seconds\{minion="dns-b"\} [1-9]/)
    t.match(metrics, /saltmasq_dnsmasq_minion_behind_since_timestamp_seconds\{minion="dns-a"\} 0/)

    await salt!.startMinion(dnsMinion(siteB))
    await salt!.waitForMinions(['dns-b'])
    // No event and no request: saltmasq's own catch-up syncs bring it up to date.
    await waitFor('dns-b caught up', async () => (await minions()).every((m) => m.state === 'current'), 90_000, 250)
    t.same((await dhcpLines(siteB)).sort(), await expectedLines(), 'site B holds every reservation, none lost or stale')
    t.same((await dhcpLines(siteA)).sort(), await expectedLines())
    t.same(
      await b1.machine.resolve('site-a-late.lab', siteB.gateway),
      [late.ip],
      'site B resolves the machine added while it was down',
    )
  },
)

t.test('a hand-edited file on a dnsmasq host is put right at the next sync', async (t) => {
  const path = join(siteA.own, 'dhcp-hosts')
  await writeFile(path, `${await readFile(path, 'utf8')}02:00:00:00:00:99,10.98.1.99,intruder\n`)
  const res = await svc!.request('POST', '/resync?wait=true')
  t.equal(res.status, 200)
  t.same(res.body.filesChanged, [join(published, 'dhcp-hosts')])
  t.same((await dhcpLines(siteA)).sort(), await expectedLines(), 'the edit is gone')
  t.equal(res.body.applied, true, 'and dnsmasq re-read the file')
})

t.test('a destroyed machine leaves both sites: reservation, name and its lease', async (t) => {
  t.ok(
    (await siteB.dns.leases()).some((l) => l.ip === b1.ip),
    'site-b-web holds a lease at site B',
  )
  await salt!.destroyMinion('site-b-web')
  await b1.machine.flushAddress()
  await salt!.fireEvent('salt/cloud/site-b-web/destroyed', { name: 'site-b-web', event: 'destroyed instance' })
  await waitFor(
    'site-b-web unreserved',
    async () => !(await reservations()).some((r) => r.minionId === 'site-b-web'),
    60_000,
    100,
  )
  await waitFor(
    'its lease released at site B',
    async () => !(await siteB.dns.leases()).some((l) => l.ip === b1.ip),
    15_000,
    100,
  )
  for (const site of sites)
    t.notOk(
      (await dhcpLines(site)).some((l) => l.startsWith('site-b-web,')),
      `gone from ${site.name}'s files`,
    )
  t.same(await a1.machine.resolve('site-b-web.lab', siteA.gateway), [], 'no longer resolves at site A')
  t.same(await a1.machine.resolve('site-a-web.lab', siteA.gateway), [a1.ip], 'the others still do')
})

t.test('saltmasq kept nothing but its state, and logged no secret', async (t) => {
  const log = await readFile(svc!.logFile, 'utf8')
  t.notOk(log.includes(token))
  t.notOk(log.includes(salt!.apiPassword))
  const ls = await run('find', [state, '-type', 'f'])
  t.same(
    ls.stdout
      .trim()
      .split('\n')
      .map((p) => p.slice(state.length + 1))
      .sort(),
    ['state.json', 'state.json.minions'],
  )
})
