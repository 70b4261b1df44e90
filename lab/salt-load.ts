// What a test or a benchmark puts on the lab master's bus: a fleet of registered minions with
// no process, salt-cloud's events, a flood of job returns, and loads sent as a minion would.
import { randomBytes } from 'node:crypto'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { labScripts, venvBin } from './paths.js'

export interface SaltLoadOptions {
  /** Runs a command, its stdout, or throws naming it. */
  exec: (command: string, args: string[]) => Promise<string>
  root: string
  masterConf: string
  /** A real minion's config (the lab's first): the fake identities use its master and keys' paths. */
  minionConfig: () => string
}

export class SaltLoad {
  readonly #opts: SaltLoadOptions

  constructor(opts: SaltLoadOptions) {
    this.#opts = opts
  }

  /**
   * Registers `count` minions with keys and mine data but no process (`${idPrefix}000`, ...,
   * addresses `${ipPrefix}.10` onwards): a fleet of many machines on two cores.
   */
  async registerFakeMinions(count: number, ipPrefix: string, idPrefix = 'vm'): Promise<string[]> {
    await this.#opts.exec(join(venvBin, 'python3'), [
      join(labScripts, 'fake_minions.py'),
      this.#opts.minionConfig(),
      join(this.#opts.root, 'fake'),
      String(count),
      ipPrefix,
      idPrefix,
    ])
    return Array.from({ length: count }, (_, i) => `${idPrefix}${String(i).padStart(3, '0')}`)
  }

  /**
   * Fires salt/cloud/<id>/<kind> on the master bus as the master (salt-cloud) does, from one
   * process, for vm000.. (`count` of them) or one `minionId`. `at`: epoch ms of the first.
   */
  async fireCloudEvents(
    kind: 'created' | 'destroyed' | 'noop',
    count: number,
    minionId?: string,
  ): Promise<{ at: number, seconds: number }> {
    const out = await this.#opts.exec(join(venvBin, 'python3'), [
      join(labScripts, 'fire_events.py'),
      join(this.#opts.masterConf, 'master'),
      kind,
      String(count),
      ...(minionId === undefined ? [] : [minionId]),
    ])
    const [at, seconds] = out.trim().split(' ').map(Number) as [number, number]
    return { at: at * 1000, seconds }
  }

  /**
   * Fires job returns of ~`payload` bytes on the master bus for `seconds`, as fast as one
   * process can, with a salt/cloud/<prefix>NNN/created every `cloudEvery` events (at most
   * `cloudCount`): what the bus of a master running states on thousands of minions looks like.
   */
  async floodBus(
    seconds: number,
    payload: number,
    cloudEvery: number,
    cloudPrefix: string,
    cloudCount: number,
  ): Promise<{ fired: number, cloud: number, seconds: number }> {
    const out = await this.#opts.exec(join(venvBin, 'python3'), [
      join(labScripts, 'flood_bus.py'),
      join(this.#opts.masterConf, 'master'),
      String(seconds),
      String(payload),
      String(cloudEvery),
      cloudPrefix,
      String(cloudCount),
    ])
    const [fired, cloud, took] = out.trim().split(' ').map(Number) as [number, number, number]
    return { fired, cloud, seconds: took }
  }

  /**
   * Sends `load` to the master as minion `id` would, holding only its own key (a fake identity
   * under the lab's root, registered on first use): any `_minion_event` (tags, `events`,
   * `pretag`) or `_mine` data a minion that is root on its own host can send.
   */
  async asMinion(id: string, load: Record<string, unknown>): Promise<unknown> {
    const file = join(this.#opts.root, `load-${randomBytes(6).toString('hex')}.json`)
    await writeFile(file, JSON.stringify(load))
    try {
      return JSON.parse(
        await this.#opts.exec(join(venvBin, 'python3'), [
          join(labScripts, 'as_minion.py'),
          this.#opts.minionConfig(),
          join(this.#opts.root, 'fake'),
          id,
          file,
        ]),
      )
    } finally {
      await rm(file, { force: true })
    }
  }
}
