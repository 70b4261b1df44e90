// Test hosts in network namespaces: a "master" namespace holding a bridge (the lab network,
// 10.99.0.0/24, the master at .1) and one namespace per machine, wired to the bridge with a
// veth pair. Every address lives inside namespaces this module created; teardown deletes them
// all (and an exit handler does so even when a test dies).
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { mustRun, run, startDaemon, type Daemon, type RunResult } from './processes.js'

export const LAB_SUBNET = '10.99.0.0/24'
export const MASTER_IP = '10.99.0.1'

const created = new Set<string>()
process.on('exit', () => {
  for (const ns of created) spawnSync('ip', ['netns', 'del', ns])
})

/**
 * A directory mounted over another for one command and its children: two lab "hosts" each see their
 * own files at one path.
 */
export type BindMount = readonly [source: string, target: string]

/** `command args` run with `bind` mounted (inside `ip netns exec`, whose mount namespace is the command's own). */
export function withBindMount(bind: BindMount | undefined, command: string, args: string[]): [string, string[]] {
  if (bind === undefined) return [command, args]
  return ['sh', ['-c', 'mount --bind "$1" "$2" && shift 2 && exec "$@"', 'sh', bind[0], bind[1], command, ...args]]
}

export class Namespace {
  readonly name: string

  constructor(name: string) {
    this.name = name
  }

  async run(command: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<RunResult> {
    return await run('ip', ['netns', 'exec', this.name, command, ...args], opts)
  }

  async mustRun(command: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
    return await mustRun('ip', ['netns', 'exec', this.name, command, ...args], opts)
  }

  daemon(label: string, command: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): Daemon {
    return startDaemon(label, 'ip', ['netns', 'exec', this.name, command, ...args], logFile, env)
  }
}

export class Machine extends Namespace {
  readonly hostname: string
  readonly #script: string

  constructor(name: string, hostname: string, script: string) {
    super(name)
    this.hostname = hostname
    this.#script = script
  }

  /** One DHCP exchange with busybox udhcpc sending our host name; returns the address bound. */
  async dhcp(opts: { requestIp?: string } = {}): Promise<string> {
    const args = [
      'udhcpc',
      '-i',
      'eth0',
      '-f',
      '-q',
      '-n',
      '-t',
      '6',
      '-T',
      '1',
      '-A',
      '1',
      '-s',
      this.#script,
      '-x',
      `hostname:${this.hostname}`,
    ]
    if (opts.requestIp !== undefined) args.push('-r', opts.requestIp)
    await this.mustRun('busybox', args, { timeoutMs: 30_000 })
    const ip = await this.address()
    if (ip === undefined) throw new Error(`${this.hostname} got no address from DHCP`)
    return ip
  }

  async address(): Promise<string | undefined> {
    const out = await this.mustRun('ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0'])
    return /inet (\d+\.\d+\.\d+\.\d+)\//.exec(out)?.[1]
  }

  async setMac(mac: string): Promise<void> {
    await this.mustRun('ip', ['link', 'set', 'eth0', 'down'])
    await this.mustRun('ip', ['link', 'set', 'eth0', 'address', mac])
    await this.mustRun('ip', ['link', 'set', 'eth0', 'up'])
  }

  async mac(): Promise<string> {
    const out = await this.mustRun('ip', ['-o', 'link', 'show', 'dev', 'eth0'])
    return /link\/ether ([0-9a-f:]{17})/.exec(out)?.[1] ?? ''
  }

  async setAddress(ip: string): Promise<void> {
    await this.flushAddress()
    await this.mustRun('ip', ['addr', 'add', `${ip}/24`, 'dev', 'eth0'])
  }

  async flushAddress(): Promise<void> {
    await this.mustRun('ip', ['-4', 'addr', 'flush', 'dev', 'eth0'])
  }

  /** Asks the lab's DNS server (dnsmasq on the master, or `server`) for `name`; [] when it has no answer. */
  async resolve(name: string, server = MASTER_IP): Promise<string[]> {
    const res = await this.run('busybox', ['nslookup', '-type=a', name, server], { timeoutMs: 10_000 })
    const answer = res.stdout
      .split(/\nName:/)
      .slice(1)
      .join('\n')
    return [...answer.matchAll(/Address:\s*(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!)
  }
}

export class NetLab {
  readonly dir: string
  readonly master: Namespace
  readonly machines: Machine[] = []
  readonly segments: Namespace[] = []
  readonly #prefix: string
  readonly #script: string

  private constructor(dir: string, prefix: string) {
    this.dir = dir
    this.#prefix = prefix
    this.master = new Namespace(`${prefix}-master`)
    this.#script = join(dir, 'udhcpc.script')
  }

  /** Creates the master namespace with the lab bridge (br0, MASTER_IP/24). */
  static async create(dir: string): Promise<NetLab> {
    const lab = new NetLab(dir, `smqlab${randomBytes(2).toString('hex')}`)
    await writeFile(
      lab.#script,
      [
        '#!/bin/sh', '# udhcpc calls this on lease events: configure eth0 with what DHCP gave us.', 'case "$1" in',
        '  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;',
        '  bound|renew) ip -4 addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface" ;;', 'esac',
        '',
      ].join('\n'),
    )
    await chmod(lab.#script, 0o755)
    await lab.#addNamespace(lab.master.name)
    await lab.master.mustRun('ip', ['link', 'add', 'br0', 'type', 'bridge'])
    await lab.master.mustRun('ip', ['addr', 'add', `${MASTER_IP}/24`, 'dev', 'br0'])
    await lab.master.mustRun('ip', ['link', 'set', 'br0', 'up'])
    return lab
  }

  async #addNamespace(name: string): Promise<void> {
    await mustRun('ip', ['netns', 'add', name])
    created.add(name)
    await mustRun('ip', ['-n', name, 'link', 'set', 'lo', 'up'])
  }

  /**
   * A host with two networks: `mgmt0` on the lab bridge at `labIp`, and a bridge of its own
   * (br0, `gatewayIp`/24) for machines added on it: a site whose DHCP/DNS server it will run.
   */
  async addSegment(labIp: string, gatewayIp: string): Promise<Namespace> {
    const index = this.segments.length
    const ns = new Namespace(`${this.#prefix}-s${index}`)
    await this.#addNamespace(ns.name)
    const port = `s${index}`
    await mustRun('ip', [
      '-n', this.master.name, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'mgmt0', 'netns', ns.name,
    ])
    await this.master.mustRun('ip', ['link', 'set', port, 'master', 'br0'])
    await this.master.mustRun('ip', ['link', 'set', port, 'up'])
    await ns.mustRun('ip', ['addr', 'add', `${labIp}/24`, 'dev', 'mgmt0'])
    await ns.mustRun('ip', ['link', 'set', 'mgmt0', 'up'])
    await ns.mustRun('ip', ['link', 'add', 'br0', 'type', 'bridge'])
    await ns.mustRun('ip', ['addr', 'add', `${gatewayIp}/24`, 'dev', 'br0'])
    await ns.mustRun('ip', ['link', 'set', 'br0', 'up'])
    this.segments.push(ns)
    return ns
  }

  /** A machine namespace with eth0 on the lab bridge (or on `segment`'s), no address yet. */
  async addMachine(hostname: string, segment: Namespace = this.master): Promise<Machine> {
    const index = this.machines.length
    const machine = new Machine(`${this.#prefix}-m${index}`, hostname, this.#script)
    await this.#addNamespace(machine.name)
    // Both ends are created straight inside their namespaces: nothing appears on the host.
    const port = `p${index}`
    await mustRun('ip', [
      '-n', segment.name, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', machine.name,
    ])
    await segment.mustRun('ip', ['link', 'set', port, 'master', 'br0'])
    await segment.mustRun('ip', ['link', 'set', port, 'up'])
    await machine.mustRun('ip', ['link', 'set', 'eth0', 'up'])
    this.machines.push(machine)
    return machine
  }

  async destroy(): Promise<void> {
    for (const ns of [...this.machines.map((m) => m.name), ...this.segments.map((s) => s.name), this.master.name]) {
      await run('ip', ['netns', 'del', ns])
      created.delete(ns)
    }
  }
}
