// A real dnsmasq serving DHCP and DNS on the lab bridge, inside the master's namespace. Its
// reservation files come from conf-dir, where the project's saltmasq.dnsmasq state points
// dnsmasq at the files saltmasq writes.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { withBindMount, type BindMount, type Namespace } from './netns.js'
import { killOnExit, livePid, stopPid, waitFor } from './processes.js'

export interface Lease {
  expiry: number
  mac: string
  ip: string
  hostname: string
}

export class DhcpDnsmasq {
  readonly dir: string
  readonly confFile: string
  readonly confDir: string
  readonly hostsDir: string
  readonly pidFile: string
  readonly logFile: string
  readonly leaseFile: string
  readonly #ns: Namespace
  readonly #view: BindMount | undefined

  /** `view`: a directory mounted for this dnsmasq alone (its host's view of a shared path). */
  constructor(ns: Namespace, dir: string, view?: BindMount) {
    this.#ns = ns
    this.#view = view
    this.dir = dir
    this.confFile = join(dir, 'dnsmasq.conf')
    this.confDir = join(dir, 'dnsmasq.d')
    this.hostsDir = join(dir, 'hosts')
    this.pidFile = join(dir, 'dnsmasq.pid')
    this.logFile = join(dir, 'dnsmasq.log')
    this.leaseFile = join(dir, 'dnsmasq.leases')
  }

  get dhcpHostsFile(): string {
    return join(this.hostsDir, 'dhcp-hosts')
  }

  get addnHostsFile(): string {
    return join(this.hostsDir, 'addn-hosts')
  }

  get dhcpHostsDir(): string {
    return join(this.hostsDir, 'dhcp-hosts.d')
  }

  get dnsHostsDir(): string {
    return join(this.hostsDir, 'hosts.d')
  }

  /** dnsmasq's own configuration; the reservations part comes from the salt state in conf-dir. */
  async writeConfig(range: { first: string, last: string }, domain: string): Promise<void> {
    await mkdir(this.confDir, { recursive: true })
    await writeFile(this.confFile, [
      'interface=br0', 'bind-interfaces', 'no-resolv', 'no-hosts', `domain=${domain}`, `local=/${domain}/`,
      `dhcp-range=${range.first},${range.last},255.255.255.0,1h`, 'dhcp-authoritative',
      `dhcp-leasefile=${this.leaseFile}`, 'log-dhcp', 'user=root', `pid-file=${this.pidFile}`,
      `log-facility=${this.logFile}`, `conf-dir=${this.confDir},*.conf`, '',
    ].join('\n'))
  }

  async start(): Promise<number> {
    await rm(this.pidFile, { force: true })
    killOnExit(this.pidFile)
    await this.#ns.mustRun(...withBindMount(this.#view, 'dnsmasq', [`--conf-file=${this.confFile}`]))
    return await waitFor('dnsmasq to write its pid', async () => await this.pid())
  }

  async pid(): Promise<number | undefined> {
    return await livePid(this.pidFile)
  }

  /** SIGTERM; SIGKILL after 30 s (dnsmasq takes no signal while it reads a huge hostsfile). */
  async stop(): Promise<void> {
    const pid = await this.pid()
    if (pid !== undefined) await stopPid(pid, 30_000)
  }

  async leases(): Promise<Lease[]> {
    const text = await readFile(this.leaseFile, 'utf8').catch(() => '')
    return text.split('\n').filter((l) => l.trim() !== '').map((line) => {
      const [expiry, mac, ip, hostname] = line.split(' ')
      return { expiry: Number(expiry), mac: mac ?? '', ip: ip ?? '', hostname: hostname ?? '' }
    })
  }

  async log(): Promise<string> {
    return await readFile(this.logFile, 'utf8').catch(() => '')
  }
}
