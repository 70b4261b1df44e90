// A real dnsmasq serving DNS only, on a loopback port, reading the files saltmasq writes. Used
// where no DHCP is needed (integration tests, demo): a restart that dnsmasq survives proves it
// accepted the reservations, and a DNS answer proves a name resolves.
import { readFile, writeFile, mkdir, chmod } from 'node:fs/promises'
import { Resolver } from 'node:dns/promises'
import { join } from 'node:path'
import { freePort, killOnExit, livePid, mustRun, stopPid, waitFor } from './processes.js'

export class LoopbackDnsmasq {
  readonly dir: string
  readonly port: number
  readonly confFile: string
  readonly pidFile: string
  readonly logFile: string
  /** The conf-dir file saltmasq writes in conf format. */
  readonly reservationsConf: string
  readonly dhcpHostsFile: string
  readonly addnHostsFile: string
  /** hostsdir format: the directories dnsmasq watches with inotify. */
  readonly dhcpHostsDir: string
  readonly dnsHostsDir: string
  /** Scripts the dnsmasq minion runs through salt-api (cmd.run_all) to apply. */
  readonly restartScript: string
  readonly reloadScript: string
  /** dnsmasq's own syntax check of this configuration (the conf format's check). */
  readonly checkCommand: string

  private constructor(dir: string, port: number) {
    this.dir = dir
    this.port = port
    this.confFile = join(dir, 'dnsmasq.conf')
    this.pidFile = join(dir, 'dnsmasq.pid')
    this.logFile = join(dir, 'dnsmasq.log')
    this.reservationsConf = join(dir, 'dnsmasq.d', 'reservations.conf')
    this.dhcpHostsFile = join(dir, 'hosts', 'dhcp-hosts')
    this.addnHostsFile = join(dir, 'hosts', 'addn-hosts')
    this.dhcpHostsDir = join(dir, 'hosts', 'dhcp-hosts.d')
    this.dnsHostsDir = join(dir, 'hosts', 'hosts.d')
    this.restartScript = join(dir, 'restart-dnsmasq.sh')
    this.reloadScript = join(dir, 'reload-dnsmasq.sh')
    this.checkCommand = `dnsmasq --test --conf-file=${this.confFile}`
  }

  static async start(dir: string): Promise<LoopbackDnsmasq> {
    const d = new LoopbackDnsmasq(dir, await freePort())
    await mkdir(join(dir, 'dnsmasq.d'), { recursive: true })
    await mkdir(d.dhcpHostsDir, { recursive: true })
    await mkdir(d.dnsHostsDir, { recursive: true })
    // dnsmasq refuses to start on a missing dhcp-hostsfile or addn-hosts file.
    await writeFile(d.dhcpHostsFile, '', { flag: 'a' })
    await writeFile(d.addnHostsFile, '', { flag: 'a' })
    await writeFile(d.confFile, [
      `port=${d.port}`, 'listen-address=127.0.0.1', 'bind-interfaces', 'no-resolv', 'no-hosts', 'user=root',
      `pid-file=${d.pidFile}`, `log-facility=${d.logFile}`, `conf-dir=${join(dir, 'dnsmasq.d')},*.conf`,
      `dhcp-hostsfile=${d.dhcpHostsFile}`, `addn-hosts=${d.addnHostsFile}`, `dhcp-hostsdir=${d.dhcpHostsDir}`,
      `hostsdir=${d.dnsHostsDir}`, '',
    ].join('\n'))
    await writeFile(d.restartScript, [
      '#!/bin/sh', `pid=$(cat ${d.pidFile} 2>/dev/null)`,
      'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done; fi',
      `date +%s.%N >> ${join(dir, 'restarts.log')}`, `exec dnsmasq --conf-file=${d.confFile}`, '',
    ].join('\n'))
    await writeFile(d.reloadScript, `#!/bin/sh\nexec kill -HUP "$(cat ${d.pidFile})"\n`)
    await chmod(d.restartScript, 0o755)
    await chmod(d.reloadScript, 0o755)
    // It forks itself away (and is restarted by the lab's scripts): known by its pid file.
    killOnExit(d.pidFile)
    await mustRun('dnsmasq', [`--conf-file=${d.confFile}`])
    await waitFor('dnsmasq pid file', async () => await d.pid())
    return d
  }

  /** The running dnsmasq's pid, or undefined when none runs. */
  async pid(): Promise<number | undefined> {
    return await livePid(this.pidFile)
  }

  /** How many times the restart script ran. */
  async restarts(): Promise<number> {
    const text = await readFile(join(this.dir, 'restarts.log'), 'utf8').catch(() => '')
    return text.split('\n').filter((l) => l !== '').length
  }

  async resolve(name: string): Promise<string[]> {
    const resolver = new Resolver({ timeout: 1000, tries: 1 })
    resolver.setServers([`127.0.0.1:${this.port}`])
    try {
      return await resolver.resolve4(name)
    } catch (err) {
      // dnsmasq with no upstream answers REFUSED for a name it does not hold.
      if (['ENOTFOUND', 'ENODATA', 'EREFUSED'].includes((err as NodeJS.ErrnoException).code ?? '')) return []
      throw err
    }
  }

  async stop(): Promise<void> {
    const pid = await this.pid()
    if (pid !== undefined) await stopPid(pid, 30_000)
  }
}
