// A real Salt master, salt-api (rest_cherrypy) and salt-minions from the project's virtualenv,
// each with its own config dir under one temporary root, on loopback. The master gets the
// project's own salt/ files (reactor map, reactor SLS, api config); only ports, paths, the URL
// saltmasq listens on and a lab-only eauth (sharedsecret) are the lab's own.
// Over 250 lines: the daemons' lifecycle and the CLI wrappers a test reaches the master with;
// its YAML is salt-yaml.ts's, its load generators salt-load.ts's.
import { randomBytes } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { withBindMount, type Namespace } from './netns.js'
import { freePort, run, startDaemon, stopDaemon, waitFor, type Daemon, type RunResult } from './processes.js'
import { saltFiles, venvBin } from './paths.js'
import { grantLines, minionMineConfig, type Grant, type LabMinion } from './salt-yaml.js'
import { SaltLoad } from './salt-load.js'

export type { Grant, LabMinion }

/**
 * A master configured the way the README's install steps configure one: the lab writes only
 * what makes it a lab (root_dir, ports, interface, Salt's default file_roots and pillar_roots
 * under `srv`), then `install(confDir)` does the rest before the master starts.
 */
export interface Installed {
  install: (confDir: string) => Promise<void>
  srv: string
  /** Where salt-api answers, as the installed api.conf says. */
  apiUrl: string
}

export interface SaltLabOptions {
  minions: LabMinion[]
  /** Where the reactor posts: saltmasq's webhook. */
  webhookUrl: string
  webhookToken: string
  /** Local-client permissions for the eauth user beyond the runner functions saltmasq reads with. */
  grants?: Grant[]
  /** Run master, salt-api and the salt CLI inside this namespace, the master bound to `masterAddress`. */
  masterNetns?: Namespace
  masterAddress?: string
  /**
   * Replaces the project's reactor map (YAML under `reactor:`, absolute SLS paths): the seed path
   * in the benchmarks.
   */
  reactorMap?: string
  /** More file_roots (before the project's salt/states). */
  fileRoots?: string[]
  /** The reactor's `saltmasq:cloud_event_minions`. */
  cloudEventMinions?: string[]
  /** log_level_logfile of the master (info by default). */
  masterLogLevel?: string
  /** More lines for the master's config. */
  masterConfig?: string[]
  /** Configured by the README's install steps, not by the lab. */
  installed?: Installed
}

export class SaltLab {
  readonly root: string
  readonly apiUser = 'saltmasq'
  readonly apiPassword: string
  readonly apiEauth = 'sharedsecret'
  readonly #opts: SaltLabOptions
  readonly #ports: { publish: number, ret: number, api: number }
  #master: Daemon | null = null
  #api: Daemon | null = null
  readonly #minions = new Map<string, Daemon>()

  private constructor(root: string, opts: SaltLabOptions, ports: { publish: number, ret: number, api: number }) {
    this.root = root
    this.#opts = opts
    this.#ports = ports
    this.apiPassword = randomBytes(24).toString('hex')
  }

  get apiUrl(): string {
    return this.#opts.installed?.apiUrl ?? `http://127.0.0.1:${this.#ports.api}`
  }

  /** Runs a command where the master runs (its namespace, if any). */
  async #exec(command: string, args: string[]): Promise<RunResult> {
    const ns = this.#opts.masterNetns
    return ns === undefined ? await run(command, args) : await ns.run(command, args)
  }

  async #mustExec(command: string, args: string[]): Promise<string> {
    const res = await this.#exec(command, args)
    if (res.code !== 0)
      throw new Error(`${command} ${args.join(' ')} exited ${res.code}: ${res.stderr.trim() || res.stdout.trim()}`)
    return res.stdout
  }

  #daemon(label: string, ns: Namespace | undefined, command: string, args: string[], logFile: string): Daemon {
    return ns === undefined ? startDaemon(label, command, args, logFile) : ns.daemon(label, command, args, logFile)
  }

  /** HTTP status of a GET where the master runs (node's fetch, inside the namespace if any). */
  async httpStatus(url: string): Promise<number> {
    const script = `fetch(${JSON.stringify(url)}).then(r => { process.stdout.write(String(r.status)) }, () => { `
      + `process.stdout.write('0') })`
    // Only whether salt-api answers at all: an installed salt-api has a self-signed certificate.
    const env = { ...process.env, NODE_TLS_REJECT_UNAUTHORIZED: '0', NODE_NO_WARNINGS: '1' }
    const ns = this.#opts.masterNetns
    const res =
      ns === undefined
        ? await run(process.execPath, ['-e', script], { env })
        : await ns.run(process.execPath, ['-e', script], { env })
    return Number(res.stdout)
  }

  static async start(opts: SaltLabOptions): Promise<SaltLab> {
    // Short root: salt's unix sockets live under it and their paths are limited to ~107 bytes.
    const root = await mkdtemp(join(tmpdir(), 'smq-'))
    const lab = new SaltLab(root, opts, { publish: await freePort(), ret: await freePort(), api: await freePort() })
    try {
      await lab.#writeMasterConfig()
      lab.#startMaster()
      await lab.startApi()
      for (const m of opts.minions) await lab.startMinion(m)
      await lab.waitForMinions(opts.minions.map((m) => m.id))
      await lab.refreshMine(opts.minions.map((m) => m.id))
    } catch (err) {
      await lab.stop()
      throw err
    }
    return lab
  }

  /** The SALT_API_* variables that point saltmasq at this lab. */
  get saltApiEnv(): Record<string, string> {
    return {
      SALT_API_URL: this.apiUrl,
      SALT_API_USER: this.apiUser,
      SALT_API_PASSWORD: this.apiPassword,
      SALT_API_EAUTH: this.apiEauth,
    }
  }

  get masterConf(): string {
    return join(this.root, 'master')
  }

  get masterLog(): string {
    return join(this.root, 'master', 'root', 'var', 'log', 'salt', 'master')
  }

  async #writeMasterConfig(): Promise<void> {
    if (this.#opts.installed !== undefined) {
      await this.#writeInstalledMasterConfig(this.#opts.installed)
      return
    }
    const conf = this.masterConf
    await mkdir(join(conf, 'master.d'), { recursive: true })
    await mkdir(join(this.root, 'reactor'), { recursive: true })
    await copyFile(join(saltFiles, 'reactor', 'saltmasq.sls'), join(this.root, 'reactor', 'saltmasq.sls'))
    const reactorMap =
      this.#opts.reactorMap
      ?? (await readFile(join(saltFiles, 'master.d', 'reactor.conf'), 'utf8')).replaceAll(
        '/srv/reactor/',
        `${this.root}/reactor/`,
      )
    await writeFile(join(conf, 'master.d', 'reactor.conf'), reactorMap)
    await copyFile(join(saltFiles, 'master.d', 'api.conf'), join(conf, 'master.d', 'api.conf'))
    // The project's saltmasq.conf with the lab's URL and header file (the token, root-only).
    const headerFile = join(conf, 'saltmasq-webhook.headers')
    await writeFile(headerFile, `Authorization: Bearer ${this.#opts.webhookToken}\nContent-Type: application/json\n`, {
      mode: 0o600,
    })
    await writeFile(
      join(conf, 'master.d', 'saltmasq.conf'),
      (await readFile(join(saltFiles, 'master.d', 'saltmasq.conf'), 'utf8'))
        .replace(/^ {2}url: .*$/m, `  url: ${JSON.stringify(this.#opts.webhookUrl)}`)
        .replace(/^ {2}header_file: .*$/m, `  header_file: ${JSON.stringify(headerFile)}`)
        .replace(
          /^ {2}cloud_event_minions: .*$/m,
          `  cloud_event_minions: ${JSON.stringify(this.#opts.cloudEventMinions ?? [])}`,
        ),
    )
    // Loaded after api.conf: the lab's ports, no TLS, and a sharedsecret eauth in place of pam.
    await writeFile(
      join(conf, 'master.d', 'zz-lab.conf'),
      [
        'rest_cherrypy:',
        '  host: 127.0.0.1',
        `  port: ${this.#ports.api}`,
        '  disable_ssl: True',
        `sharedsecret: ${JSON.stringify(this.apiPassword)}`,
        'external_auth:',
        '  sharedsecret:',
        `    ${this.apiUser}:`,
        ...grantLines([
          { target: '@runner', functions: ['mine.get', 'mine.update'] },
          { target: '@wheel', functions: ['key.list_all'] },
          ...(this.#opts.grants ?? []),
        ]),
        '',
      ].join('\n'),
    )
    await this.#writeMaster([
      // The project's salt/states: the saltmasq execution module and the dnsmasq state.
      'file_roots:',
      '  base:',
      ...(this.#opts.fileRoots ?? []).map((dir) => `    - ${dir}`),
      `    - ${join(saltFiles, 'states')}`,
    ])
  }

  /** The master file: what makes it the lab's (id, root_dir, address, ports, log level), then `more`. */
  async #writeMaster(more: string[]): Promise<void> {
    const conf = this.masterConf
    await writeFile(
      join(conf, 'master'),
      [
        'id: lab-master',
        `root_dir: ${join(conf, 'root')}`,
        `interface: ${this.#opts.masterAddress ?? '127.0.0.1'}`,
        `publish_port: ${this.#ports.publish}`,
        `ret_port: ${this.#ports.ret}`,
        'auto_accept: True',
        'enable_fqdns_grains: False',
        `log_level_logfile: ${this.#opts.masterLogLevel ?? 'info'}`,
        'user: root',
        ...more,
        ...(this.#opts.masterConfig ?? []),
        '',
      ].join('\n'),
    )
  }

  async #writeInstalledMasterConfig(installed: Installed): Promise<void> {
    const conf = this.masterConf
    await mkdir(join(conf, 'master.d'), { recursive: true })
    await this.#writeMaster([
      // Salt's defaults, under the lab's stand-in for /srv.
      'file_roots:',
      '  base:',
      `    - ${join(installed.srv, 'salt')}`,
      'pillar_roots:',
      '  base:',
      `    - ${join(installed.srv, 'pillar')}`,
    ])
    await installed.install(conf)
  }

  #startMaster(): void {
    this.#master = this.#daemon(
      'salt-master',
      this.#opts.masterNetns,
      join(venvBin, 'salt-master'),
      ['-c', this.masterConf, '-l', 'warning'],
      join(this.root, 'master.out'),
    )
  }

  async startApi(): Promise<void> {
    const log = join(this.root, 'api.out')
    for (let attempt = 1; ; attempt++) {
      const api = this.#daemon(
        'salt-api',
        this.#opts.masterNetns,
        join(venvBin, 'salt-api'),
        ['-c', this.masterConf, '-l', 'warning'],
        log,
      )
      this.#api = api
      const exited = (): boolean => api.child.exitCode !== null || api.child.signalCode !== null
      try {
        await waitFor(
          'salt-api to answer',
          async () => !exited() && (await this.httpStatus(`${this.apiUrl}/`)) === 200,
          90_000,
        )
        return
      } catch (err) {
        // Another test's process may have taken the free port picked for it in the meantime:
        // salt-api then gives up on binding and exits. A new port, and again.
        if (exited() && this.#opts.installed === undefined && attempt < 3) {
          this.#ports.api = await freePort()
          const lab = join(this.masterConf, 'master.d', 'zz-lab.conf')
          await writeFile(lab, (await readFile(lab, 'utf8')).replace(/^ {2}port: \d+$/m, `  port: ${this.#ports.api}`))
          continue
        }
        const tail = (await readFile(log, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n')
        throw new Error(
          `${(err as Error).message}; salt-api ${exited() ? 'exited' : 'still running'}, its log ends:\n${tail}`,
        )
      }
    }
  }

  /** What `systemctl restart salt-master salt-api` does: every salt-api session is gone after it. */
  async restartMasterAndApi(): Promise<void> {
    await this.stopApi()
    if (this.#master !== null) await stopDaemon(this.#master)
    this.#startMaster()
    await this.startApi()
    await this.waitForMinions([...this.#minions.keys()])
  }

  async stopApi(): Promise<void> {
    if (this.#api !== null) await stopDaemon(this.#api)
    this.#api = null
  }

  async startMinion(m: LabMinion): Promise<void> {
    const dir = join(this.root, m.id)
    await mkdir(dir, { recursive: true })
    await writeFile(
      join(dir, 'minion'),
      [
        `id: ${m.id}`,
        `root_dir: ${join(dir, 'root')}`,
        `master: ${this.#opts.masterAddress ?? '127.0.0.1'}`,
        `master_port: ${this.#ports.ret}`,
        `publish_port: ${this.#ports.publish}`,
        'acceptance_wait_time: 1',
        'enable_fqdns_grains: False',
        ...minionMineConfig(m),
        ...(m.extraConfig ?? []),
        '',
      ].join('\n'),
    )
    const [command, args] = withBindMount(m.bindMount, join(venvBin, 'salt-minion'), ['-c', dir, '-l', 'warning'])
    this.#minions.set(m.id, this.#daemon(`salt-minion ${m.id}`, m.netns, command, args, join(dir, 'minion.out')))
  }

  async stopMinion(id: string): Promise<void> {
    const d = this.#minions.get(id)
    if (d !== undefined) await stopDaemon(d)
    this.#minions.delete(id)
  }

  /** Stops the minion and deletes its key, which also drops its mine data: what salt-cloud destroy does. */
  async destroyMinion(id: string): Promise<void> {
    await this.stopMinion(id)
    await this.deleteKeys([id])
  }

  async salt(args: string[]): Promise<unknown> {
    return JSON.parse(
      await this.#mustExec(join(venvBin, 'salt'), ['-c', this.masterConf, '--out=json', '--static', ...args]),
    )
  }

  /** `salt` for a call expected to fail on the minion (salt exits non-zero then): its returns all the same. */
  async saltFailing(args: string[]): Promise<unknown> {
    const res = await this.#exec(join(venvBin, 'salt'), ['-c', this.masterConf, '--out=json', '--static', ...args])
    return JSON.parse(res.stdout)
  }

  async saltRun(args: string[]): Promise<unknown> {
    return JSON.parse(await this.#mustExec(join(venvBin, 'salt-run'), ['-c', this.masterConf, '--out=json', ...args]))
  }

  /** The minion's config file (what `salt.client.Caller` reads). */
  minionConfig(id: string): string {
    return join(this.root, id, 'minion')
  }

  /** Load and forgeries on the master's bus: fake fleets, cloud events, floods, a minion's own loads. */
  get load(): SaltLoad {
    return new SaltLoad({
      exec: async (command, args) => await this.#mustExec(command, args),
      root: this.root,
      masterConf: this.masterConf,
      minionConfig: () => this.minionConfig(this.#opts.minions[0]!.id),
    })
  }

  /** What salt-cloud's destroy does once the driver returned: the accepted key file removed (no event). */
  async removeAcceptedKey(id: string): Promise<void> {
    await rm(join(this.masterConf, 'root', 'etc', 'salt', 'pki', 'master', 'minions', id))
  }

  /** What anyone who reaches the master's port can do (without auto_accept): a pending key filed under `id`. */
  async filePendingKey(id: string): Promise<void> {
    const dir = join(this.masterConf, 'root', 'etc', 'salt', 'pki', 'master', 'minions_pre')
    await mkdir(dir, { recursive: true })
    await copyFile(join(this.masterConf, 'root', 'etc', 'salt', 'pki', 'master', 'master.pub'), join(dir, id))
  }

  /** What `salt-key -d` does (and salt-cloud's destroy, which deletes the key file). A glob deletes many at once. */
  async deleteKeys(idsOrGlobs: string[]): Promise<void> {
    for (const id of idsOrGlobs)
      await this.#mustExec(join(venvBin, 'salt-key'), ['-c', this.masterConf, '-y', '-d', id])
  }

  async fireEvent(tag: string, data: Record<string, unknown>): Promise<void> {
    await this.#mustExec(join(venvBin, 'salt-run'), ['-c', this.masterConf, 'event.send', tag, JSON.stringify(data)])
  }

  async waitForMinions(ids: string[]): Promise<void> {
    if (ids.length === 0) return
    await waitFor(
      `minions ${ids.join(', ')} to answer test.ping`,
      async () => {
        const res = await this.#exec(join(venvBin, 'salt'), [
          '-c', this.masterConf, '--out=json', '--static', '-t', '5', '*', 'test.ping',
        ])
        const pinged = JSON.parse(res.stdout || '{}') as Record<string, unknown>
        return ids.every((id) => pinged[id] === true)
      },
      120_000,
      1000,
    )
  }

  async mine(): Promise<Record<string, unknown>> {
    return (await this.saltRun(['mine.get', '*', 'network.ip_addrs'])) as Record<string, unknown>
  }

  /** Asks the minions to send their mine data and waits until the master has it for each. */
  async refreshMine(ids: string[]): Promise<void> {
    if (ids.length === 0) return
    await this.salt(['-L', ids.join(','), 'mine.update'])
    await waitFor(
      `mine data for ${ids.join(', ')}`,
      async () => {
        const mine = await this.mine()
        return ids.every((id) => id in mine)
      },
      60_000,
      500,
    )
  }

  async stop(): Promise<void> {
    await Promise.all(
      [...this.#minions.values()].map(async (d) => {
        await stopDaemon(d)
      }),
    )
    this.#minions.clear()
    await this.stopApi()
    if (this.#master !== null) await stopDaemon(this.#master)
    this.#master = null
    if (process.env.SALTMASQ_KEEP_LAB === undefined) await rm(this.root, { recursive: true, force: true })
  }
}
