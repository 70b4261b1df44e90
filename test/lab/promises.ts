// The three promises, proven with every part real: network namespaces on a bridge, dnsmasq
// serving DHCP and DNS, machines getting addresses from busybox udhcpc and running real
// salt-minions, the real master with the project's reactor, salt-api, and saltmasq itself
// (dist/src/server.js). Run once per format by the promises-*.test.ts files: hostsdir (inotify
// picks up new files; only deletions are applied, by SIGHUP through salt-api) and hostsfile
// (additions as delta files picked up by inotify; removals compacted into the base files and
// applied by SIGHUP). Scenarios run in order, each its own test; everything is
// torn down at the end, even after a failure.
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { DhcpDnsmasq } from '../../lab/dhcp-dnsmasq.js'
import { LAB_SUBNET, MASTER_IP, NetLab, type Machine } from '../../lab/netns.js'
import { waitFor } from '../../lab/processes.js'
import { SaltLab } from '../../lab/salt-lab.js'
import { SaltmasqProcess } from '../../lab/saltmasq-process.js'

interface Reservation {
  minionId: string
  ip: string
  staleSince?: string
}

export type LabFormat = 'hostsdir' | 'hostsfile'

export async function provePromises(format: LabFormat): Promise<void> {
  const token = randomBytes(24).toString('hex')
  const tmp = await mkdtemp(join(tmpdir(), 'smq-lab-'))
  let net: NetLab | undefined
  let salt: SaltLab | undefined
  let dns: DhcpDnsmasq | undefined
  let svc: SaltmasqProcess | undefined

  t.teardown(async () => {
    await svc?.stop()
    await salt?.stop()
    await dns?.stop()
    await net?.destroy()
    if (process.env.SALTMASQ_KEEP_LAB === undefined) await rm(tmp, { recursive: true, force: true })
  })

  function randomMac(): string {
    return ['02', ...[...randomBytes(5)].map((b) => b.toString(16).padStart(2, '0'))].join(':')
  }

  net = await NetLab.create(tmp)
  const web = await net.addMachine('web01')
  const db = await net.addMachine('db01')
  const app = await net.addMachine('app01')
  const churn = await net.addMachine('churn')
  const clash = await net.addMachine('clash01')
  const late = await net.addMachine('late01')

  dns = new DhcpDnsmasq(net.master, join(tmp, 'dnsmasq'))
  await dns.writeConfig({ first: '10.99.0.100', last: '10.99.0.109' }, 'lab')

  salt = await SaltLab.start({
    masterNetns: net.master,
    masterAddress: MASTER_IP,
    // The saltmasq module takes its paths from the minion's config, never from the caller.
    minions: [
      {
        id: 'dns-host',
        ips: ['127.0.0.1'],
        netns: net.master,
        extraConfig: ['saltmasq:', '  dnsmasq:', `    pidfile: ${dns.pidFile}`, `    leasefile: ${dns.leaseFile}`],
      },
    ],
    webhookUrl: 'http://127.0.0.1:18080/hooks/salt',
    webhookToken: token,
    grants: [{ target: 'dns-host', functions: ['saltmasq.reload', 'saltmasq.release_lease'] }],
  })

  // The project's dnsmasq state points dnsmasq at saltmasq's files (no service management here:
  // the lab starts dnsmasq itself, with its own pid file).
  const pillar = {
    saltmasq: { dnsmasq: { format, conf_dir: dns.confDir, hosts_dir: dns.hostsDir, manage_service: false } },
  }
  const applied = (await salt.salt([
    'dns-host', 'state.apply', 'saltmasq.dnsmasq', `pillar=${JSON.stringify(pillar)}`,
  ])) as Record<string, Record<string, { result: boolean }>>
  const stateResults = Object.values(applied['dns-host'] ?? {})
  if (stateResults.length === 0 || !stateResults.every((s) => s.result))
    throw new Error(`saltmasq.dnsmasq state failed: ${JSON.stringify(applied)}`)
  let dnsmasqPid = await dns.start()

  const KEY_GONE_S = 5
  const svcEnv = {
    ...salt.saltApiEnv,
    PORT: '18080',
    WEBHOOK_TOKEN: token,
    MANAGED_SUBNETS: LAB_SUBNET,
    RESERVATIONS_FORMAT: format,
    DHCP_HOSTSFILE: dns.dhcpHostsFile,
    ADDN_HOSTS_FILE: dns.addnHostsFile,
    DHCP_HOSTSDIR: dns.dhcpHostsDir,
    DNS_HOSTSDIR: dns.dnsHostsDir,
    DNS_DOMAIN: 'lab',
    STATE_FILE: join(tmp, 'saltmasq-state.json'),
    DNSMASQ_MINION: 'dns-host',
    // The defaults: saltmasq.reload (no service manager here: the pid file), saltmasq.release_lease.
    DNSMASQ_RELEASE_ARGS: JSON.stringify(['interface=br0']),
    DESTROY_WHEN_KEY_GONE_S: String(KEY_GONE_S),
    LOG_LEVEL: 'info',
  }
  svc = await SaltmasqProcess.start(svcEnv, join(tmp, 'saltmasq.log'), net.master)

  async function boot(machine: Machine): Promise<string> {
    const ip = await machine.dhcp()
    await salt!.startMinion({ id: machine.hostname, netns: machine })
    await salt!.waitForMinions([machine.hostname])
    await salt!.refreshMine([machine.hostname])
    return ip
  }

  async function reservations(): Promise<Reservation[]> {
    return (await svc!.request('GET', '/reservations')).body.reservations as Reservation[]
  }

  async function reservedIp(id: string): Promise<string | undefined> {
    return (await reservations()).find((r) => r.minionId === id)?.ip
  }

  /** Every DHCP reservation dnsmasq is given, one line each, whatever the format. */
  async function publishedDhcpLines(): Promise<string[]> {
    // hostsfile: the base file and the delta files beside it; hostsdir: a file per reservation.
    const texts = [
      ...(format === 'hostsfile' ? [await readFile(dns!.dhcpHostsFile, 'utf8')] : []),
      ...(await Promise.all(
        (await readdir(dns!.dhcpHostsDir)).map(async (name) => await readFile(join(dns!.dhcpHostsDir, name), 'utf8')),
      )),
    ]
    return texts
      .join('')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
  }

  /** How often dnsmasq has read the base dhcp-hostsfile (at start and on each SIGHUP). */
  async function baseReads(): Promise<number> {
    return (await dns!.log()).split(`read ${dns!.dhcpHostsFile}\n`).length - 1
  }

  /** How often dnsmasq has been told to re-read everything (SIGHUP logs "cleared cache"; so does start-up). */
  async function cacheClears(): Promise<number> {
    return ((await dns!.log()).match(/cleared cache/g) ?? []).length
  }

  async function assertSamePid(t: Test, why: string): Promise<void> {
    t.equal(await dns!.pid(), dnsmasqPid, `dnsmasq never restarted: same pid ${why}`)
  }

  // db01 and app01 are already running when saltmasq first syncs.
  const dbIp = await boot(db)
  const appIp = await boot(app)
  const first = await svc.request('POST', '/resync?wait=true')
  if (first.status !== 200) throw new Error(`first resync failed: ${JSON.stringify(first.body)}`)

  let webIp = ''

  t.test('1. a new machine gets a dynamic IP, and its created event reserves exactly that IP', async (t) => {
    t.same(
      (await reservations()).map((r) => [r.minionId, r.ip]),
      [
        ['app01', appIp],
        ['db01', dbIp],
      ],
      'running machines reserved at their DHCP addresses',
    )
    webIp = await web.dhcp()
    t.match(webIp, /^10\.99\.0\.1\d\d$/, 'a dynamic address from the pool')
    await salt!.startMinion({ id: 'web01', netns: web })
    await salt!.waitForMinions(['web01'])
    await salt!.refreshMine(['web01'])
    t.equal(await reservedIp('web01'), undefined, 'no reservation before the event')
    const clearsBefore = await cacheClears()
    const reloadsBefore = await baseReads()
    const deltasBefore = format === 'hostsfile' ? await readdir(dns!.dhcpHostsDir) : []
    await salt!.fireEvent('salt/cloud/web01/created', { name: 'web01', profile: 'lab', event: 'created instance' })
    await waitFor('web01 reserved', async () => await reservedIp('web01'), 60_000, 100)
    t.equal(await reservedIp('web01'), webIp, 'reserved at the address DHCP gave it, with no one supplying it')
    t.ok((await publishedDhcpLines()).includes(`web01,${webIp}`), 'dnsmasq is given the reservation')
    if (format === 'hostsdir') {
      await waitFor(
        'dnsmasq to read web01\'s file through inotify',
        async () => (await dns!.log()).includes(`read ${join(dns!.dhcpHostsDir, 'web01')}`),
        10_000,
        20,
      )
      const log = await dns!.log()
      t.ok(log.includes(`inotify: ${join(dns!.dhcpHostsDir, 'web01')} new or modified`), 'picked up by inotify')
      t.equal(
        log.split(`read ${join(dns!.dhcpHostsDir, 'db01')}`).length - 1,
        1,
        'db01\'s file was read once, never re-read',
      )
    } else {
      // The addition is one delta file in the dhcp-hostsdir, read through inotify.
      const news = (await readdir(dns!.dhcpHostsDir)).filter((name) => !deltasBefore.includes(name))
      t.equal(news.length, 1, `one new file in the dhcp-hostsdir: ${news.join(', ')}`)
      t.match(news[0], /^delta-\d{6}$/, 'a delta file')
      const delta = join(dns!.dhcpHostsDir, news[0] ?? '')
      t.match(
        await readFile(delta, 'utf8'),
        new RegExp(`^web01,${webIp.replaceAll('.', '\\.')}$`, 'm'),
        'holding web01\'s reservation',
      )
      await waitFor(
        'dnsmasq to read the delta file through inotify',
        async () => (await dns!.log()).includes(`inotify: ${delta} new or modified`),
        10_000,
        20,
      )
      t.ok(reloadsBefore >= 1, `dnsmasq read the base at start (${reloadsBefore} reads so far)`)
      t.equal(await baseReads(), reloadsBefore, 'the base hostsfile was not re-read')
    }
    t.equal(await cacheClears(), clearsBefore, 'no SIGHUP: dnsmasq never cleared its cache')
    t.notOk((await svc!.request('GET', '/reservations')).body.lastSync.applied, 'saltmasq applied nothing')
    await assertSamePid(t, 'after the reservation')
  })

  t.test('2. its name and name.domain resolve through dnsmasq from another machine', async (t) => {
    t.same(await db.resolve('web01'), [webIp])
    t.same(await db.resolve('web01.lab'), [webIp])
    t.same(await web.resolve('db01.lab'), [dbIp])
  })

  t.test(
    format === 'hostsdir'
      ? '3. lease released (no restart, no reload), MAC changed, pool churned: it gets the same IP again'
      : '3. lease file wiped, dnsmasq restarted, MAC changed, pool churned: it gets the same IP again',
    async (t) => {
      const oldMac = await web.mac()
      if (format === 'hostsdir') {
        // The reservation dnsmasq picked up by inotify alone must hold: no restart re-reads it.
        await net!.master.mustRun('dhcp_release', ['br0', webIp, oldMac])
        await waitFor('web01\'s lease gone', async () => !(await dns!.leases()).some((l) => l.ip === webIp), 10_000, 50)
      } else {
        await dns!.stop()
        await rm(dns!.leaseFile, { force: true })
        dnsmasqPid = await dns!.start()
      }
      await web.setMac(randomMac())
      t.not(await web.mac(), oldMac, 'new MAC')
      await web.flushAddress()
      // Seven other clients take every address of the ten-address pool that is not reserved.
      const churned = new Set<string>()
      for (let i = 0; i < 7; i++) {
        await churn.setMac(randomMac())
        await churn.flushAddress()
        churned.add(await churn.dhcp())
      }
      t.equal(churned.size, 7, 'seven distinct addresses handed out to others')
      t.notOk(churned.has(webIp), 'none of them got web01\'s address')
      t.equal(await web.dhcp(), webIp, 'web01 is given its reserved address')
      if (format === 'hostsdir') await assertSamePid(t, 'through the whole scenario')
    },
  )

  t.test('4. its minion stops and leaves the mine; after a resync the reservation stays', async (t) => {
    await salt!.stopMinion('web01')
    await salt!.saltRun(['cache.clear_mine', 'tgt=web01'])
    await waitFor('web01 gone from the mine', async () => !('web01' in (await salt!.mine())))
    const res = await svc!.request('POST', '/resync?wait=true')
    t.equal(res.status, 200)
    t.same(
      res.body.stale.map((s: Reservation) => s.minionId),
      ['web01'],
    )
    const r = (await reservations()).find((x) => x.minionId === 'web01')
    t.equal(r?.ip, webIp, 'same IP')
    t.ok(r?.staleSince, 'marked stale, with a date')
    t.same(await db.resolve('web01.lab'), [webIp], 'still resolves')
    await assertSamePid(t, 'after the resync')
  })

  t.test(
    '5. a destroy the way salt-cloud does it (the event, then the key deleted) removes reservation, DNS name and lease; the IP can be handed out again',
    async (t) => {
      t.ok(
        (await dns!.leases()).some((l) => l.ip === webIp),
        'web01 holds a lease',
      )
      // The driver destroys the machine: its address no longer answers (dnsmasq pings an address before offering it).
      await salt!.stopMinion('web01')
      await web.flushAddress()
      // salt-cloud fires the driver's destroyed event first and deletes the key afterwards (after
      // the whole batch for `-d a b c`): meanwhile the event alone releases nothing, and no sync
      // brings anything back.
      // Two more machines in the same `salt-cloud -d web01 batch000 batch001`: their keys too go
      // only after the last event.
      const batch = await salt!.registerFakeMinions(2, '10.99.0', 'batch')
      await svc!.request('POST', '/resync?wait=true')
      t.ok((await reservations()).filter((r) => batch.includes(r.minionId)).length === 2, 'the batch reserved')
      const clearsBefore = await cacheClears()
      for (const id of ['web01', ...batch])
        await salt!.fireEvent(`salt/cloud/${id}/destroyed`, { name: id, event: 'destroyed instance' })
      await svc!.request('POST', '/resync?wait=true')
      await new Promise((resolve) => setTimeout(resolve, 1000))
      t.equal(await reservedIp('web01'), webIp, 'kept while its key is accepted')
      t.ok(
        (await reservations()).filter((r) => batch.includes(r.minionId)).length === 2,
        'and the batch too: nothing released, nothing resurrected',
      )
      t.equal(await cacheClears(), clearsBefore, 'and dnsmasq told nothing')
      // salt-cloud removes the batch's key files one after another once the drivers returned.
      for (const id of ['web01', ...batch]) await salt!.removeAcceptedKey(id)
      await waitFor('web01 unreserved', async () => (await reservedIp('web01')) === undefined, 60_000, 100)
      await waitFor(
        'the batch unreserved',
        async () => !(await reservations()).some((r) => batch.includes(r.minionId)),
        60_000,
        100,
      )
      await waitFor('the lease released', async () => !(await dns!.leases()).some((l) => l.ip === webIp), 10_000, 100)
      t.notOk(
        (await publishedDhcpLines()).some((l) => l.endsWith(',web01') || l.startsWith('web01,')),
        'the reservation is gone from dnsmasq\'s files',
      )
      if (format === 'hostsdir') {
        // A deleted dhcp-hostsdir file is forgotten only on SIGHUP: the first deletion reloads at once.
        await waitFor('the reload for the deletion', async () => (await cacheClears()) === clearsBefore + 1, 10_000, 50)
        t.match(
          await dns!.log(),
          new RegExp(`inotify: ${join(dns!.dnsHostsDir, 'web01').replaceAll('.', '\\.')} removed`),
          'the DNS file\'s removal seen by inotify',
        )
      }
      t.same(await db.resolve('web01.lab'), [], 'the name no longer resolves')
      await churn.setMac(randomMac())
      await churn.flushAddress()
      t.equal(await churn.dhcp({ requestIp: webIp }), webIp, 'another machine can now be given the address')
      await assertSamePid(t, 'after the destroy')
    },
  )

  t.test(
    '6. two minions claiming one IP: one conflict reported, the file stays valid, dnsmasq keeps answering',
    async (t) => {
      // The pool is full after the churn: clash01 gets a static address outside it, and its mine
      // claims app01's address.
      await clash.setAddress('10.99.0.50')
      await salt!.startMinion({ id: 'clash01', netns: clash, ips: [appIp] })
      await salt!.waitForMinions(['clash01'])
      await salt!.refreshMine(['clash01'])
      const res = await svc!.request('POST', '/resync?wait=true')
      t.equal(res.status, 200)
      t.same(res.body.conflicts, [{ minionId: 'clash01', reason: 'ip-taken', heldBy: 'app01', ip: appIp }])
      t.same(
        (await svc!.request('GET', '/reservations')).body.lastSync.conflicts.map(
          (c: { minionId: string }) => c.minionId,
        ),
        ['clash01'],
      )
      const lines = await publishedDhcpLines()
      t.notOk(lines.some((l) => l.includes('clash01')))
      const ips = lines.map((l) => l.split(',')[1])
      t.equal(new Set(ips).size, ips.length, 'no IP given to dnsmasq twice')
      t.same(await db.resolve('app01.lab'), [appIp])
      t.same(await app.resolve('db01.lab'), [dbIp])
      t.match(await readFile(svc!.logFile, 'utf8'), /reservation conflict/)
      await assertSamePid(
        t,
        format === 'hostsdir'
          ? 'through the whole lab'
          : 'through every saltmasq operation since the deliberate restart',
      )
    },
  )

  t.test(
    '7. a machine destroyed while saltmasq is down loses reservation, DNS name and lease once saltmasq is back; its address goes to a new machine',
    async (t) => {
      // clash01 leaves too (it claimed app01's address in scenario 6 and would claim it again).
      await salt!.destroyMinion('clash01')
      // app01 renews its lease (hostsfile's scenario 3 wiped the lease file).
      await app.flushAddress()
      t.equal(await app.dhcp(), appIp, 'app01 holds its reserved address')
      await svc!.stop()
      await salt!.destroyMinion('app01')
      await app.flushAddress()
      // salt-cloud fires its destroyed event; nobody is listening (the reactor's post is refused).
      await salt!.fireEvent('salt/cloud/app01/destroyed', { name: 'app01', event: 'destroyed instance' })
      t.ok(
        (await dns!.leases()).some((l) => l.ip === appIp),
        'app01 still holds its lease',
      )
      t.same(await db.resolve('app01.lab'), [appIp], 'and its name still resolves')

      const back = Date.now()
      svc = await SaltmasqProcess.start(svcEnv, join(tmp, 'saltmasq.log'), net!.master)
      await waitFor(
        'app01 released by its missing key',
        async () => (await reservedIp('app01')) === undefined,
        (KEY_GONE_S + 60) * 1000,
        200,
      )
      t.ok(Date.now() - back >= KEY_GONE_S * 1000, 'not before DESTROY_WHEN_KEY_GONE_S')
      await waitFor('the lease released', async () => !(await dns!.leases()).some((l) => l.ip === appIp), 15_000, 100)
      t.match(
        await readFile(svc.logFile, 'utf8'),
        /"minionId":"app01".*key-gone\)/,
        'released with the reason key-gone',
      )
      t.notOk(
        (await publishedDhcpLines()).some((l) => l.includes('app01')),
        'gone from dnsmasq\'s files',
      )
      await waitFor('the name gone from DNS', async () => (await db.resolve('app01.lab')).length === 0, 15_000, 100)
      t.pass('app01.lab no longer resolves')
      t.ok(
        (await reservations()).some((r) => r.minionId === 'db01'),
        'the machines still there keep theirs',
      )
      await churn.setMac(randomMac())
      await churn.flushAddress()
      t.equal(await churn.dhcp({ requestIp: appIp }), appIp, 'a new machine is given app01\'s address')
    },
  )

  t.test('8. a machine added after a deletion was applied gets its reserved address, with no signal', async (t) => {
    // Its own address is outside the exhausted pool; the reservation makes DHCP hand it back.
    await late.setAddress('10.99.0.60')
    const clearsBefore = await cacheClears()
    await salt!.startMinion({ id: 'late01', netns: late, ips: ['10.99.0.60'] })
    await salt!.waitForMinions(['late01'])
    await salt!.refreshMine(['late01'])
    await salt!.fireEvent('salt/cloud/late01/created', { name: 'late01', event: 'created instance' })
    await waitFor('late01 reserved', async () => await reservedIp('late01'), 60_000, 100)
    t.equal(await reservedIp('late01'), '10.99.0.60')
    await late.setMac(randomMac())
    await late.flushAddress()
    t.equal(await late.dhcp(), '10.99.0.60', 'a new MAC, no address: DHCP gives it its reserved one')
    t.equal(await cacheClears(), clearsBefore, 'no SIGHUP for the addition')
    t.same(await db.resolve('late01.lab'), ['10.99.0.60'], 'its name resolves (through its lease)')
  })

  // hostsdir removes a destroyed machine's file (dnsmasq logs that it cannot read it): by design.
  if (format === 'hostsfile') {
    t.test('hostsfile: no "cannot read" in dnsmasq\'s log of the whole run', async (t) => {
      const log = await dns!.log()
      t.ok(log.includes('read '), 'dnsmasq logged its reads')
      t.notMatch(log, /cannot read/, 'compactions empty the delta files instead of removing what dnsmasq watches')
    })
  }

  t.test('no secret in saltmasq\'s log of the whole lab run', async (t) => {
    const log = await readFile(svc!.logFile, 'utf8')
    t.ok(log.includes('sync done'))
    t.notOk(log.includes(token), 'webhook token')
    t.notOk(log.includes(salt!.apiPassword), 'salt-api password')
  })
}
