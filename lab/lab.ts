// The loopback lab kit: a real Salt master, salt-api and minions, a real dnsmasq answering DNS on
// loopback with the `dns-host` minion allowed to reload, restart and check it, and saltmasq
// wired to both — in one temporary directory, started in one call and torn down in one call, on
// every exit path (a signal or a crash included). The demo, the integration tests and the
// benchmarks all start their labs here.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino, type Logger } from 'pino'
import { buildApp, type SaltmasqApp } from '../src/app.js'
import type { FormatName } from '../src/config/index.js'
import { DelayProxy } from './delay-proxy.js'
import { LoopbackDnsmasq } from './loopback-dnsmasq.js'
import { freePort, removeOnExit } from './processes.js'
import { SaltLab, type LabMinion, type SaltLabOptions } from './salt-lab.js'

export const DNS_MINION = 'dns-host'

export interface LabOptions {
  /** The fleet's machines; the dns-host minion is always there. */
  minions: LabMinion[]
  /** Put a DelayProxy between saltmasq and salt-api (to slow or count salt-api calls). */
  proxy?: boolean
  /** The seed path in the benchmarks: its own reactor map and file roots. */
  reactorMap?: SaltLabOptions['reactorMap']
  fileRoots?: SaltLabOptions['fileRoots']
  /** false: no reactor map (events reach saltmasq only through salt-api's event stream). */
  reactor?: boolean
  /** The reactor's and saltmasq's allow-list of minions that run salt-cloud. */
  cloudEventMinions?: string[]
  masterLogLevel?: SaltLabOptions['masterLogLevel']
  masterConfig?: SaltLabOptions['masterConfig']
  /** More config lines for the dns-host minion. */
  dnsMinionConfig?: string[]
  /** Runs last when the lab stops (a caller's own files). */
  onStop?: () => Promise<void>
}

/**
 * The saltmasq module's settings on dns-host: it may write the lab dnsmasq's hosts files and its
 * one conf-dir file (reservation lines only), check its configuration and SIGHUP it.
 */
function dnsModuleConfig(dns: LoopbackDnsmasq): string[] {
  return [
    'saltmasq:', '  dnsmasq:', '    files:', `      dhcp-hosts: ${dns.dhcpHostsFile}`,
    `      addn-hosts: ${dns.addnHostsFile}`, `      reservations-conf: ${dns.reservationsConf}`,
    `    pidfile: ${dns.pidFile}`, '    reload: pidfile', `    conf_file: ${dns.confFile}`,
  ]
}

export class Lab {
  readonly dir: string
  readonly token: string
  readonly port: number
  readonly dns: LoopbackDnsmasq
  readonly salt: SaltLab
  readonly proxy: DelayProxy | null
  #app: SaltmasqApp | null = null
  readonly #forget: () => void
  #onStop: (() => Promise<void>) | undefined

  private constructor(
    dir: string,
    token: string,
    port: number,
    dns: LoopbackDnsmasq,
    salt: SaltLab,
    proxy: DelayProxy | null,
    forget: () => void,
  ) {
    this.dir = dir
    this.token = token
    this.port = port
    this.dns = dns
    this.salt = salt
    this.proxy = proxy
    this.#forget = forget
  }

  static async start(opts: LabOptions): Promise<Lab> {
    // Short root: salt's unix sockets live under it and their paths are limited to ~107 bytes.
    const dir = await mkdtemp(join(tmpdir(), 'smq-lab-'))
    const forget = removeOnExit(dir)
    const port = await freePort()
    let dns: LoopbackDnsmasq | undefined
    let salt: SaltLab | undefined
    try {
      dns = await LoopbackDnsmasq.start(join(dir, 'dns'))
      const token = randomBytes(24).toString('hex')
      salt = await SaltLab.start({
        minions: [
          {
            id: DNS_MINION,
            ips: ['127.0.0.1'],
            extraConfig: [...dnsModuleConfig(dns), ...(opts.dnsMinionConfig ?? [])],
          },
          ...opts.minions,
        ],
        webhookUrl: `http://127.0.0.1:${port}/hooks/salt`,
        webhookToken: token,
        // The lab's dnsmasq is taken care of by scripts (no service manager here), run as cmd.run_all.
        grants: [
          {
            target: DNS_MINION,
            functions: [
              ...[dns.reloadScript, dns.restartScript, dns.checkCommand].map((script) => ({
                fun: 'cmd.run_all',
                args: [script],
              })),
              'saltmasq.publish',
            ],
          },
        ],
        ...(opts.reactorMap === undefined ? {} : { reactorMap: opts.reactorMap }),
        ...(opts.reactor === false ? { reactorMap: 'reactor: []\n' } : {}),
        ...(opts.cloudEventMinions === undefined ? {} : { cloudEventMinions: opts.cloudEventMinions }),
        ...(opts.masterLogLevel === undefined ? {} : { masterLogLevel: opts.masterLogLevel }),
        ...(opts.masterConfig === undefined ? {} : { masterConfig: opts.masterConfig }),
        ...(opts.fileRoots === undefined ? {} : { fileRoots: opts.fileRoots }),
      })
      const proxy = opts.proxy === true ? await DelayProxy.start(salt.apiUrl) : null
      const lab = new Lab(dir, token, port, dns, salt, proxy, forget)
      lab.#onStop = opts.onStop
      return lab
    } catch (err) {
      await salt?.stop()
      await dns?.stop()
      await rm(dir, { recursive: true, force: true })
      forget()
      await opts.onStop?.()
      throw err
    }
  }

  /** Puts the project's execution module on the dns-host minion (DNSMASQ_PUBLISH=salt calls it). */
  async syncModules(): Promise<void> {
    await this.salt.salt([DNS_MINION, 'saltutil.sync_modules'])
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  get auth(): { authorization: string } {
    return { authorization: `Bearer ${this.token}` }
  }

  /**
   * saltmasq's environment for this lab in `format`: the dnsmasq files of the lab's dnsmasq, the
   * apply each format needs through the dns-host minion, no lease release (no DHCP on loopback).
   */
  saltmasqEnv(format: FormatName, more: Record<string, string> = {}): Record<string, string> {
    const dns = this.dns
    return {
      ...this.salt.saltApiEnv,
      ...(this.proxy === null ? {} : { SALT_API_URL: this.proxy.url }),
      WEBHOOK_TOKEN: this.token,
      MANAGED_SUBNETS: '10.77.0.0/16',
      RESERVATIONS_FORMAT: format,
      RESERVATIONS_FILE: dns.reservationsConf,
      DHCP_HOSTSFILE: dns.dhcpHostsFile,
      ADDN_HOSTS_FILE: dns.addnHostsFile,
      DHCP_HOSTSDIR: dns.dhcpHostsDir,
      DNS_HOSTSDIR: dns.dnsHostsDir,
      STATE_FILE: join(this.dir, 'state.json'),
      DNSMASQ_MINION: DNS_MINION,
      DNSMASQ_APPLY_FUNCTION: 'cmd.run_all',
      DNSMASQ_APPLY_ARGS: JSON.stringify([format === 'conf' ? dns.restartScript : dns.reloadScript]),
      DNSMASQ_TEST_FUNCTION: 'cmd.run_all',
      DNSMASQ_TEST_ARGS: JSON.stringify([dns.checkCommand]),
      DNSMASQ_RELEASE_FUNCTION: '',
      LOG_LEVEL: 'info',
      ...more,
    }
  }

  /**
   * saltmasq in this process, listening where the lab's reactor posts; closed by `stop`.
   * `beforeListen` may add hooks (a benchmark's timers) while that is still allowed.
   */
  async startSaltmasq(
    env: Record<string, string>,
    logger: Logger = pino({ level: 'silent' }),
    beforeListen?: (app: SaltmasqApp) => void,
  ): Promise<SaltmasqApp> {
    const app = await buildApp({ env, logger })
    this.#app = app
    beforeListen?.(app)
    await app.listen({ host: '127.0.0.1', port: this.port })
    return app
  }

  /** Closes saltmasq (if `startSaltmasq` started it): what a stopped service looks like. */
  async stopSaltmasq(): Promise<void> {
    await this.#app?.close()
    this.#app = null
  }

  async stop(): Promise<void> {
    try {
      await this.stopSaltmasq()
      await this.proxy?.close()
      await this.salt.stop()
      await this.dns.stop()
    } finally {
      if (process.env.SALTMASQ_KEEP_LAB === undefined) {
        await rm(this.dir, { recursive: true, force: true })
        this.#forget()
      }
      await this.#onStop?.()
    }
  }
}
