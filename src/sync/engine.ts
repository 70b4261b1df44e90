// When to sync and how runs fold together. One sync reads the mine through salt-api, updates the
// ledger, renders and writes the dnsmasq files, and applies them through salt-api when (and only
// when) a file changed. At most one sync runs at a time; requests that arrive while one runs are
// folded into a single follow-up run, so a burst of events costs two syncs, not one per event.
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import { DnsmasqPublisher, type Released } from '../dnsmasq/apply.js'
import type { SaltClient } from '../salt/client.js'
import { parseMine, type MineProblem } from '../salt/mine.js'
import { emptyLedger, updateLedger, type Conflict, type Ledger, type Reservation, type Skipped } from '../reservations/ledger.js'
import { parseDhcpHosts, render } from '../reservations/render.js'
import { loadLedger, readIfExists, serializeLedger, writeIfChanged } from '../reservations/store.js'

export interface SyncResult extends Released {
  startedAt: string
  durationMs: number
  added: Reservation[]
  removed: Reservation[]
  unchanged: string[]
  stale: Array<{ minionId: string, ip: string, staleSince: string }>
  conflicts: Conflict[]
  skipped: Skipped[]
  mineProblems: MineProblem[]
  filesChanged: string[]
  applied: boolean
}

export interface Readiness {
  ready: boolean
  reason?: string
}

export interface EngineOptions {
  config: Config
  client: Pick<SaltClient, 'mineGet' | 'local' | 'probe'>
  logger: Logger
  now?: () => Date
}

export class SyncEngine {
  readonly #config: Config
  readonly #client: EngineOptions['client']
  readonly #log: Logger
  readonly #now: () => Date
  readonly #publisher: DnsmasqPublisher
  #ledger: Ledger
  readonly #pendingDestroyed = new Set<string>()
  #running: Promise<SyncResult> | null = null
  #queued: Promise<SyncResult> | null = null
  #lastResult: SyncResult | null = null
  #lastError: Error | null = null

  private constructor (opts: EngineOptions, ledger: Ledger) {
    this.#config = opts.config
    this.#client = opts.client
    this.#log = opts.logger
    this.#now = opts.now ?? (() => new Date())
    this.#ledger = ledger
    this.#publisher = new DnsmasqPublisher(opts.config, opts.client, opts.logger)
  }

  /** Loads the durable ledger; with no state file, rebuilds it from the dnsmasq file on disk. */
  static async open (opts: EngineOptions): Promise<SyncEngine> {
    const { files, format } = opts.config
    let ledger = await loadLedger(files.state)
    if (ledger === null) {
      const source = format === 'conf' ? files.conf : files.dhcpHosts
      const text = await readIfExists(source)
      ledger = emptyLedger()
      if (text !== null) {
        const { entries, unreadable } = parseDhcpHosts(text)
        const stamp = (opts.now?.() ?? new Date()).toISOString()
        ledger = new Map(entries.map((e) => [e.minionId, { ...e, firstSeen: stamp, lastSeen: stamp }]))
        opts.logger.warn({ source, reservations: entries.length, unreadable }, 'no state file: rebuilt the ledger from the dnsmasq file')
      }
    }
    return new SyncEngine(opts, ledger)
  }

  get reservations (): Reservation[] {
    return [...this.#ledger.values()]
  }

  get lastResult (): SyncResult | null {
    return this.#lastResult
  }

  has (minionId: string): boolean {
    return this.#ledger.has(minionId)
  }

  /** A new machine: a sync picks it up from the mine. */
  async created (_minionId: string): Promise<SyncResult> {
    return await this.sync()
  }

  /** A destroyed machine (or an operator's delete): its reservation goes at the next sync. */
  async destroyed (minionId: string): Promise<SyncResult> {
    this.#pendingDestroyed.add(minionId)
    return await this.sync()
  }

  /**
   * Runs a sync now, or joins the follow-up of the one running. The promise is that of the run
   * that will include everything requested up to this call.
   */
  async sync (): Promise<SyncResult> {
    if (this.#running === null) {
      this.#running = this.#runOnce().finally(() => { this.#running = null })
      return await this.#running
    }
    this.#queued ??= this.#running.catch(() => undefined).then(async () => {
      this.#queued = null
      return await this.sync()
    })
    return await this.#queued
  }

  /** Resolves once no sync is running or queued: shutdown waits for this, so no file is left half-done. */
  async idle (): Promise<void> {
    while (this.#running !== null || this.#queued !== null) {
      await (this.#queued ?? this.#running)?.catch(() => undefined)
    }
  }

  async readiness (): Promise<Readiness> {
    try {
      await this.#client.probe()
    } catch (err) {
      return { ready: false, reason: `salt-api: ${(err as Error).message}` }
    }
    if (this.#lastError !== null) return { ready: false, reason: `last sync failed: ${this.#lastError.message}` }
    return { ready: true }
  }

  async #runOnce (): Promise<SyncResult> {
    const started = this.#now()
    const destroyed = new Set(this.#pendingDestroyed)
    this.#pendingDestroyed.clear()
    try {
      const result = await this.#syncWith(destroyed, started)
      this.#lastResult = result
      this.#lastError = null
      this.#log.info({
        added: result.added.map((r) => `${r.minionId}=${r.ip}`),
        removed: result.removed.map((r) => r.minionId),
        conflicts: result.conflicts.length,
        skipped: result.skipped.length,
        stale: result.stale.length,
        filesChanged: result.filesChanged,
        applied: result.applied,
        ms: result.durationMs,
      }, 'sync done')
      return result
    } catch (err) {
      // Destroy requests not yet in the ledger stay pending for the next run.
      for (const id of destroyed) if (this.#ledger.has(id)) this.#pendingDestroyed.add(id)
      this.#lastError = err as Error
      this.#log.error({ err }, 'sync failed')
      throw err
    }
  }

  async #syncWith (destroyed: Set<string>, started: Date): Promise<SyncResult> {
    const config = this.#config
    const { snapshot, problems } = parseMine(await this.#client.mineGet(config.mine.target, config.mine.fun))
    for (const p of problems) this.#log.warn(p, 'mine data ignored')

    const update = updateLedger(this.#ledger, { mine: snapshot, destroyed, subnets: config.subnets, byMac: config.mine.byMac, now: started })
    for (const s of update.skipped) this.#log.warn(s, 'minion skipped')
    for (const c of update.conflicts) this.#log.warn(c, 'reservation conflict: the older reservation wins')
    const rendered = render(config.format, [...update.ledger.values()], config.dnsDomain === undefined ? {} : { domain: config.dnsDomain })

    // The ledger is made durable before dnsmasq sees anything that depends on it.
    await writeIfChanged(config.files.state, serializeLedger(update.ledger))
    this.#ledger = update.ledger

    const { filesChanged, applied } = await this.#publisher.publish(rendered)
    const released = await this.#publisher.release(update.removed)

    return {
      startedAt: started.toISOString(),
      durationMs: this.#now().getTime() - started.getTime(),
      added: update.added,
      removed: update.removed,
      unchanged: update.kept,
      stale: update.stale.map((r) => ({ minionId: r.minionId, ip: r.ip, staleSince: r.staleSince! })),
      conflicts: update.conflicts,
      skipped: update.skipped,
      mineProblems: problems,
      filesChanged,
      applied,
      ...released,
    }
  }
}
