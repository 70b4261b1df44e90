// The three promises, proven with every part real: network namespaces on a bridge, dnsmasq
// serving DHCP and DNS, machines getting addresses from busybox udhcpc and running real
// salt-minions, the real master with the project's reactor, salt-api, and saltmasq itself
// (dist/src/server.js). Run once per format by the promises-*.test.ts files: hostsdir (inotify
// picks up new files; only deletions are applied, by SIGHUP through salt-api) and hostsfile
// (additions as delta files picked up by inotify; removals compacted into the base files and
// applied by SIGHUP). Scenarios run in order, each its own test; everything is
// torn down at the end, even after a failure.
import { readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { waitFor } from '../../lab/processes.js'
import { SaltmasqProcess } from '../../lab/saltmasq-process.js'
import { openPromisesLab, type LabFormat, type PromisesLab, type Reservation } from './promises-lab.js'

export type { LabFormat }

/** The scenarios run in order against one lab, each its own test. */
export async function provePromises(format: LabFormat): Promise<void> {
  const lab = await openPromisesLab(format)
  t.teardown(lab.stop)
  t.test('1. a new machine gets a dynamic IP, and its created event reserves exactly that IP', async (t) => { await newMachineReserved(t, lab) })
  t.test('2. its name and name.domain resolve through dnsmasq from another machine', async (t) => { await nameResolves(t, lab) })
  t.test(lab.format === 'hostsdir' ? '3. lease released (no restart, no reload), MAC changed, pool churned: it gets the same IP again' : '3. lease file wiped, dnsmasq restarted, MAC changed, pool churned: it gets the same IP again', async (t) => { await sameIpAgain(t, lab) })
  t.test('4. its minion stops and leaves the mine; after a resync the reservation stays', async (t) => { await leavesTheMine(t, lab) })
  t.test('5. a destroy the way salt-cloud does it (the event, then the key deleted) removes reservation, DNS name and lease; the IP can be handed out again', async (t) => { await destroyRemovesAll(t, lab) })
  t.test('6. two minions claiming one IP: one conflict reported, the file stays valid, dnsmasq keeps answering', async (t) => { await conflictReported(t, lab) })
  t.test('7. a machine destroyed while saltmasq is down loses reservation, DNS name and lease once saltmasq is back; its address goes to a new machine', async (t) => { await destroyedWhileDown(t, lab) })
  t.test('8. a machine added after a deletion was applied gets its reserved address, with no signal', async (t) => { await addedAfterDeletion(t, lab) })
  if (lab.format === 'hostsfile') t.test('hostsfile: no "cannot read" in dnsmasq\'s log of the whole run', async (t) => { await noCannotRead(t, lab) })
  t.test('no secret in saltmasq\'s log of the whole lab run', async (t) => { await noSecretLogged(t, lab) })
}

async function newMachineReserved(t: Test, lab: PromisesLab): Promise<void> {
  const {
    format, salt, dns, web, dbIp, appIp, reservations, reservedIp, publishedDhcpLines, baseReads,
    cacheClears, assertSamePid,
  } = lab
  t.same(
    (await reservations()).map((r) => [r.minionId, r.ip]),
    [
      ['app01', appIp],
      ['db01', dbIp],
    ],
    'running machines reserved at their DHCP addresses',
  )
  lab.webIp = await web.dhcp()
  t.match(lab.webIp, /^10\.99\.0\.1\d\d$/, 'a dynamic address from the pool')
  await salt.startMinion({ id: 'web01', netns: web })
  await salt.waitForMinions(['web01'])
  await salt.refreshMine(['web01'])
  t.equal(await reservedIp('web01'), undefined, 'no reservation before the event')
  const clearsBefore = await cacheClears()
  const reloadsBefore = await baseReads()
  const deltasBefore = format === 'hostsfile' ? await readdir(dns.dhcpHostsDir) : []
  await salt.fireEvent('salt/cloud/web01/created', { name: 'web01', profile: 'lab', event: 'created instance' })
  await waitFor('web01 reserved', async () => await reservedIp('web01'), 60_000, 100)
  t.equal(await reservedIp('web01'), lab.webIp, 'reserved at the address DHCP gave it, with no one supplying it')
  t.ok((await publishedDhcpLines()).includes(`web01,${lab.webIp}`), 'dnsmasq is given the reservation')
  if (format === 'hostsdir') {
    await waitFor(
      'dnsmasq to read web01\'s file through inotify',
      async () => (await dns.log()).includes(`read ${join(dns.dhcpHostsDir, 'web01')}`),
      10_000,
      20,
    )
    const log = await dns.log()
    t.ok(log.includes(`inotify: ${join(dns.dhcpHostsDir, 'web01')} new or modified`), 'picked up by inotify')
    t.equal(
      log.split(`read ${join(dns.dhcpHostsDir, 'db01')}`).length - 1,
      1,
      'db01\'s file was read once, never re-read',
    )
  } else {
    // The addition is one delta file in the dhcp-hostsdir, read through inotify.
    const news = (await readdir(dns.dhcpHostsDir)).filter((name) => !deltasBefore.includes(name))
    t.equal(news.length, 1, `one new file in the dhcp-hostsdir: ${news.join(', ')}`)
    t.match(news[0], /^delta-\d{6}$/, 'a delta file')
    const delta = join(dns.dhcpHostsDir, news[0] ?? '')
    t.match(
      await readFile(delta, 'utf8'),
      new RegExp(`^web01,${lab.webIp.replaceAll('.', '\\.')}$`, 'm'),
      'holding web01\'s reservation',
    )
    await waitFor(
      'dnsmasq to read the delta file through inotify',
      async () => (await dns.log()).includes(`inotify: ${delta} new or modified`),
      10_000,
      20,
    )
    t.ok(reloadsBefore >= 1, `dnsmasq read the base at start (${reloadsBefore} reads so far)`)
    t.equal(await baseReads(), reloadsBefore, 'the base hostsfile was not re-read')
  }
  t.equal(await cacheClears(), clearsBefore, 'no SIGHUP: dnsmasq never cleared its cache')
  t.notOk((await lab.svc.request('GET', '/reservations')).body.lastSync.applied, 'saltmasq applied nothing')
  await assertSamePid(t, 'after the reservation')
}

async function nameResolves(t: Test, lab: PromisesLab): Promise<void> {
  const { web, db, dbIp } = lab
  t.same(await db.resolve('web01'), [lab.webIp])
  t.same(await db.resolve('web01.lab'), [lab.webIp])
  t.same(await web.resolve('db01.lab'), [dbIp])
}

async function sameIpAgain(t: Test, lab: PromisesLab): Promise<void> {
  const { format, net, dns, web, churn, assertSamePid, randomMac } = lab
  const oldMac = await web.mac()
  if (format === 'hostsdir') {
    // The reservation dnsmasq picked up by inotify alone must hold: no restart re-reads it.
    await net.master.mustRun('dhcp_release', ['br0', lab.webIp, oldMac])
    await waitFor('web01\'s lease gone', async () => !(await dns.leases()).some((l) => l.ip === lab.webIp), 10_000, 50)
  } else {
    await dns.stop()
    await rm(dns.leaseFile, { force: true })
    lab.dnsmasqPid = await dns.start()
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
  t.notOk(churned.has(lab.webIp), 'none of them got web01\'s address')
  t.equal(await web.dhcp(), lab.webIp, 'web01 is given its reserved address')
  if (format === 'hostsdir') await assertSamePid(t, 'through the whole scenario')
}

async function leavesTheMine(t: Test, lab: PromisesLab): Promise<void> {
  const { salt, db, reservations, assertSamePid } = lab
  await salt.stopMinion('web01')
  await salt.saltRun(['cache.clear_mine', 'tgt=web01'])
  await waitFor('web01 gone from the mine', async () => !('web01' in (await salt.mine())))
  const res = await lab.svc.request('POST', '/resync?wait=true')
  t.equal(res.status, 200)
  t.same(
    res.body.stale.map((s: Reservation) => s.minionId),
    ['web01'],
  )
  const r = (await reservations()).find((x) => x.minionId === 'web01')
  t.equal(r?.ip, lab.webIp, 'same IP')
  t.ok(r?.staleSince, 'marked stale, with a date')
  t.same(await db.resolve('web01.lab'), [lab.webIp], 'still resolves')
  await assertSamePid(t, 'after the resync')
}

async function destroyRemovesAll(t: Test, lab: PromisesLab): Promise<void> {
  const {
    format, salt, dns, web, db, churn, reservations, reservedIp, publishedDhcpLines, cacheClears,
    assertSamePid, randomMac,
  } = lab
  t.ok(
    (await dns.leases()).some((l) => l.ip === lab.webIp),
    'web01 holds a lease',
  )
  // The driver destroys the machine: its address no longer answers (dnsmasq pings an address before offering it).
  await salt.stopMinion('web01')
  await web.flushAddress()
  // salt-cloud fires the driver's destroyed event first and deletes the key afterwards (after
  // the whole batch for `-d a b c`): meanwhile the event alone releases nothing, and no sync
  // brings anything back.
  // Two more machines in the same `salt-cloud -d web01 batch000 batch001`: their keys too go
  // only after the last event.
  const batch = await salt.load.registerFakeMinions(2, '10.99.0', 'batch')
  await lab.svc.request('POST', '/resync?wait=true')
  t.ok((await reservations()).filter((r) => batch.includes(r.minionId)).length === 2, 'the batch reserved')
  const clearsBefore = await cacheClears()
  for (const id of ['web01', ...batch])
    await salt.fireEvent(`salt/cloud/${id}/destroyed`, { name: id, event: 'destroyed instance' })
  await lab.svc.request('POST', '/resync?wait=true')
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.equal(await reservedIp('web01'), lab.webIp, 'kept while its key is accepted')
  t.ok(
    (await reservations()).filter((r) => batch.includes(r.minionId)).length === 2,
    'and the batch too: nothing released, nothing resurrected',
  )
  t.equal(await cacheClears(), clearsBefore, 'and dnsmasq told nothing')
  // salt-cloud removes the batch's key files one after another once the drivers returned.
  for (const id of ['web01', ...batch]) await salt.removeAcceptedKey(id)
  await waitFor('web01 unreserved', async () => (await reservedIp('web01')) === undefined, 60_000, 100)
  await waitFor(
    'the batch unreserved',
    async () => !(await reservations()).some((r) => batch.includes(r.minionId)),
    60_000,
    100,
  )
  await waitFor('the lease released', async () => !(await dns.leases()).some((l) => l.ip === lab.webIp), 10_000, 100)
  t.notOk(
    (await publishedDhcpLines()).some((l) => l.endsWith(',web01') || l.startsWith('web01,')),
    'the reservation is gone from dnsmasq\'s files',
  )
  if (format === 'hostsdir') {
    // A deleted dhcp-hostsdir file is forgotten only on SIGHUP: the first deletion reloads at once.
    await waitFor('the reload for the deletion', async () => (await cacheClears()) === clearsBefore + 1, 10_000, 50)
    t.match(
      await dns.log(),
      new RegExp(`inotify: ${join(dns.dnsHostsDir, 'web01').replaceAll('.', '\\.')} removed`),
      'the DNS file\'s removal seen by inotify',
    )
  }
  t.same(await db.resolve('web01.lab'), [], 'the name no longer resolves')
  await churn.setMac(randomMac())
  await churn.flushAddress()
  t.equal(await churn.dhcp({ requestIp: lab.webIp }), lab.webIp, 'another machine can now be given the address')
  await assertSamePid(t, 'after the destroy')
}

async function conflictReported(t: Test, lab: PromisesLab): Promise<void> {
  const { format, salt, db, app, clash, dbIp, appIp, publishedDhcpLines, assertSamePid } = lab
  // The pool is full after the churn: clash01 gets a static address outside it, and its mine
  // claims app01's address.
  await clash.setAddress('10.99.0.50')
  await salt.startMinion({ id: 'clash01', netns: clash, ips: [appIp] })
  await salt.waitForMinions(['clash01'])
  await salt.refreshMine(['clash01'])
  const res = await lab.svc.request('POST', '/resync?wait=true')
  t.equal(res.status, 200)
  t.same(res.body.conflicts, [{ minionId: 'clash01', reason: 'ip-taken', heldBy: 'app01', ip: appIp }])
  t.same(
    (await lab.svc.request('GET', '/reservations')).body.lastSync.conflicts.map(
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
  t.match(await readFile(lab.svc.logFile, 'utf8'), /reservation conflict/)
  await assertSamePid(
    t,
    format === 'hostsdir'
      ? 'through the whole lab'
      : 'through every saltmasq operation since the deliberate restart',
  )
}

async function destroyedWhileDown(t: Test, lab: PromisesLab): Promise<void> {
  const {
    tmp, net, salt, dns, db, app, churn, appIp, KEY_GONE_S, svcEnv, reservations, reservedIp,
    publishedDhcpLines, randomMac,
  } = lab
  // clash01 leaves too (it claimed app01's address in scenario 6 and would claim it again).
  await salt.destroyMinion('clash01')
  // app01 renews its lease (hostsfile's scenario 3 wiped the lease file).
  await app.flushAddress()
  t.equal(await app.dhcp(), appIp, 'app01 holds its reserved address')
  await lab.svc.stop()
  await salt.destroyMinion('app01')
  await app.flushAddress()
  // salt-cloud fires its destroyed event; nobody is listening (the reactor's post is refused).
  await salt.fireEvent('salt/cloud/app01/destroyed', { name: 'app01', event: 'destroyed instance' })
  t.ok(
    (await dns.leases()).some((l) => l.ip === appIp),
    'app01 still holds its lease',
  )
  t.same(await db.resolve('app01.lab'), [appIp], 'and its name still resolves')

  const back = Date.now()
  lab.svc = await SaltmasqProcess.start(svcEnv, join(tmp, 'saltmasq.log'), net.master)
  await waitFor(
    'app01 released by its missing key',
    async () => (await reservedIp('app01')) === undefined,
    (KEY_GONE_S + 60) * 1000,
    200,
  )
  t.ok(Date.now() - back >= KEY_GONE_S * 1000, 'not before DESTROY_WHEN_KEY_GONE_S')
  await waitFor('the lease released', async () => !(await dns.leases()).some((l) => l.ip === appIp), 15_000, 100)
  t.match(
    await readFile(lab.svc.logFile, 'utf8'),
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
}

async function addedAfterDeletion(t: Test, lab: PromisesLab): Promise<void> {
  const { salt, db, late, reservedIp, cacheClears, randomMac } = lab
  // Its own address is outside the exhausted pool; the reservation makes DHCP hand it back.
  await late.setAddress('10.99.0.60')
  const clearsBefore = await cacheClears()
  await salt.startMinion({ id: 'late01', netns: late, ips: ['10.99.0.60'] })
  await salt.waitForMinions(['late01'])
  await salt.refreshMine(['late01'])
  await salt.fireEvent('salt/cloud/late01/created', { name: 'late01', event: 'created instance' })
  await waitFor('late01 reserved', async () => await reservedIp('late01'), 60_000, 100)
  t.equal(await reservedIp('late01'), '10.99.0.60')
  await late.setMac(randomMac())
  await late.flushAddress()
  t.equal(await late.dhcp(), '10.99.0.60', 'a new MAC, no address: DHCP gives it its reserved one')
  t.equal(await cacheClears(), clearsBefore, 'no SIGHUP for the addition')
  t.same(await db.resolve('late01.lab'), ['10.99.0.60'], 'its name resolves (through its lease)')
}

async function noCannotRead(t: Test, lab: PromisesLab): Promise<void> {
  const { dns } = lab
  const log = await dns.log()
  t.ok(log.includes('read '), 'dnsmasq logged its reads')
  t.notMatch(log, /cannot read/, 'compactions empty the delta files instead of removing what dnsmasq watches')
}

async function noSecretLogged(t: Test, lab: PromisesLab): Promise<void> {
  const { token, salt } = lab
  const log = await readFile(lab.svc.logFile, 'utf8')
  t.ok(log.includes('sync done'))
  t.notOk(log.includes(token), 'webhook token')
  t.notOk(log.includes(salt.apiPassword), 'salt-api password')
}
