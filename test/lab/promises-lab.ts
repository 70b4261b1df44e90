// The DHCP lab the promises are proven in: network namespaces on a bridge, dnsmasq serving DHCP
// and DNS, machines that get addresses from busybox udhcpc and run real salt-minions, the real
// master with the project's reactor and salt-api, and saltmasq itself (dist/src/server.js), with
// the helpers the scenarios read it through. Everything is torn down by stop(), even after a
// failure part-way through starting.
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { DhcpDnsmasq } from '../../lab/dhcp-dnsmasq.js'
import { LAB_SUBNET, MASTER_IP, NetLab, type Machine } from '../../lab/netns.js'
import { SaltLab } from '../../lab/salt-lab.js'
import { SaltmasqProcess } from '../../lab/saltmasq-process.js'

export interface Reservation {
  minionId: string
  ip: string
  staleSince?: string
}

export type LabFormat = 'hostsdir' | 'hostsfile'

export type PromisesLab = Awaited<ReturnType<typeof openPromisesLab>>

export async function openPromisesLab(format: LabFormat) {
  const token = randomBytes(24).toString('hex')
  const tmp = await mkdtemp(join(tmpdir(), 'smq-lab-'))
  let net: NetLab | undefined
  let salt: SaltLab | undefined
  let dns: DhcpDnsmasq | undefined
  let svc: SaltmasqProcess | undefined

  const stop = async (): Promise<void> => {
    await svc?.stop()
    await salt?.stop()
    await dns?.stop()
    await net?.destroy()
    if (process.env.SALTMASQ_KEEP_LAB === undefined) await rm(tmp, { recursive: true, force: true })
  }
  try {
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

    return {
      format, token, tmp, net, salt, dns, web, db, app, churn, clash, late, dbIp, appIp, KEY_GONE_S, svcEnv,
      boot, reservations, reservedIp, publishedDhcpLines, baseReads, cacheClears, assertSamePid, randomMac, stop,
      /** Scenario 1's address for web01, read by the later ones. */
      webIp: '',
      get svc(): SaltmasqProcess { return svc! },
      set svc(next: SaltmasqProcess) { svc = next },
      get dnsmasqPid(): number { return dnsmasqPid },
      set dnsmasqPid(next: number) { dnsmasqPid = next },
    }
  } catch (err) {
    await stop()
    throw err
  }
}
