// When to sync and how runs fold together. One sync reads the mine through salt-api, updates the
// ledger, renders and writes the dnsmasq files, and applies them through salt-api when (and only
// when) a file changed. At most one sync runs at a time; requests that arrive while one runs are
// folded into a single follow-up run, so a burst of events costs two syncs, not one per event.
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import { errors } from '../errors.js'
import { DnsmasqPublisher, type Released } from '../dnsmasq/apply.js'
import type { SaltClient } from '../salt/client.js'
import { parseMine, type MineProblem } from '../salt/mine.js'
import { emptyLedger, updateLedger, type Conflict, type Ledger, type Reservation, type Skipped } from '../reservations/ledger.js'
import { parseDhcpHosts, render, renderEntries } from '../reservations/render.js'
import { loadLedger, serializeLedger, writeIfChanged } from '../reservations/store.js'
import { backoffDelay } from './backoff.js'

/** Events waiting for a sync, at most, by default. Past this a hook is refused (503), never dropped silently. */
export const MAX_BACKLOG = 10_000

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
  /** hostsdir format: a reload for deletions is owed and will be sent in this many ms. */
  reloadDueInMs: number | null
  entriesWritten: number
  entriesRemoved: number
  unownedFiles: string[]
  blocked: string[]
  /** Where the time went: mine read and parse, ledger update, rendering, writing files, applying. */
  stagesMs: { mine: number, ledger: number, render: number, write: number, apply: number }
}

export interface Readiness {
  ready: boolean
  reason?: string
}

export interface EngineOptions {
  config: Config
  client: Pick<SaltClient, 'mineGet' | 'mineUpdate' | 'local' | 'probe'>
  logger: Logger
  now?: () => Date
  maxBacklog?: number
}

export class SyncEngine {
  readonly #config: Config
  readonly #client: EngineOptions['client']
  readonly #log: Logger
  readonly #now: () => Date
  readonly #publisher: DnsmasqPublisher
  #ledger: Ledger
  readonly #pendingDestroyed = new Set<string>()
  /** Created minions not yet in the mine: chased with mine.update and retried until their deadline. */
  readonly #awaiting = new Map<string, { deadline: number, attempts: number, asked: boolean }>()
  #followUp: { timer: NodeJS.Timeout, at: number } | null = null
  #reconcile: NodeJS.Timeout | null = null
  #failures = 0
  #closed = false
  readonly #maxBacklog: number
  #running: Promise<SyncResult> | null = null
  #queued: Promise<SyncResult> | null = null
  #lastResult: SyncResult | null = null
  #lastError: Error | null = null
  readonly #listeners: Array<(result: SyncResult) => void> = []

  private constructor (opts: EngineOptions, ledger: Ledger, publisher: DnsmasqPublisher) {
    this.#config = opts.config
    this.#client = opts.client
    this.#log = opts.logger
    this.#now = opts.now ?? (() => new Date())
    this.#ledger = ledger
    this.#maxBacklog = opts.maxBacklog ?? MAX_BACKLOG
    this.#publisher = publisher
  }

  /** Loads the durable ledger; with no state file, rebuilds it from the dnsmasq files on disk. */
  static async open (opts: EngineOptions): Promise<SyncEngine> {
    const publisher = await DnsmasqPublisher.open(opts.config, opts.client, opts.logger)
    let ledger = await loadLedger(opts.config.files.state)
    if (ledger === null) {
      const { source, text } = await publisher.publishedDhcpHosts()
      ledger = emptyLedger()
      if (text !== null) {
        const { entries, unreadable } = parseDhcpHosts(text)
        const stamp = (opts.now?.() ?? new Date()).toISOString()
        // The ledger keeps minion-id order (updateLedger relies on it); directory order is arbitrary.
        entries.sort((a, b) => (a.minionId < b.minionId ? -1 : a.minionId > b.minionId ? 1 : 0))
        ledger = new Map(entries.map((e) => [e.minionId, { ...e, firstSeen: stamp, lastSeen: stamp }]))
        opts.logger.warn({ source, reservations: entries.length, unreadable }, 'no state file: rebuilt the ledger from the dnsmasq file')
      }
    }
    return new SyncEngine(opts, ledger, publisher)
  }

  get reservations (): Reservation[] {
    return [...this.#ledger.values()]
  }

  /** Called after every successful sync (metrics, benchmarks). */
  onSync (listener: (result: SyncResult) => void): void {
    this.#listeners.push(listener)
  }

  get lastResult (): SyncResult | null {
    return this.#lastResult
  }

  has (minionId: string): boolean {
    return this.#ledger.has(minionId)
  }

  /** Events waiting for a sync; hooks are refused past MAX_BACKLOG. */
  get backlog (): number {
    return this.#pendingDestroyed.size + this.#awaiting.size
  }

  /**
   * A new machine: a sync picks it up from the mine. If the mine does not have it yet, the sync
   * asks the minion for mine.update and retries with backoff for up to MINE_WAIT_MS. Null when
   * the minion is already reserved: nothing to do.
   */
  created (minionId: string): Promise<SyncResult> | null {
    // Reservations are sticky: a repeated event for a reserved minion cannot change anything.
    if (this.#ledger.has(minionId)) return null
    if (!this.#awaiting.has(minionId)) {
      this.#admit()
      this.#awaiting.set(minionId, { deadline: Date.now() + this.#config.mine.waitMs, attempts: 0, asked: false })
    }
    return this.sync()
  }

  /** A destroyed machine (or an operator's delete): its reservation goes at the next sync. Throws QueueFull at once when the backlog is full. */
  destroyed (minionId: string): Promise<SyncResult> {
    if (!this.#pendingDestroyed.has(minionId)) this.#admit()
    this.#pendingDestroyed.add(minionId)
    this.#awaiting.delete(minionId)
    return this.sync()
  }

  #admit (): void {
    if (this.backlog >= this.#maxBacklog) throw new errors.QueueFull(this.backlog)
  }

  /** Periodic full syncs catch events the reactor lost (or sent while saltmasq was down). */
  startReconcile (intervalMs: number): void {
    if (intervalMs <= 0 || this.#reconcile !== null) return
    this.#reconcile = setInterval(() => { this.sync().catch(() => undefined) }, intervalMs)
    this.#reconcile.unref()
  }

  /** Stops timers and waits for the sync in flight: nothing is left half-written. */
  async close (): Promise<void> {
    this.#closed = true
    if (this.#reconcile !== null) clearInterval(this.#reconcile)
    if (this.#followUp !== null) clearTimeout(this.#followUp.timer)
    this.#reconcile = null
    this.#followUp = null
    await this.idle()
  }

  /** A sync in `delayMs` (the earliest one asked for wins). */
  #scheduleFollowUp (delayMs: number): void {
    const at = Date.now() + delayMs
    if (this.#closed || (this.#followUp !== null && this.#followUp.at <= at)) return
    if (this.#followUp !== null) clearTimeout(this.#followUp.timer)
    const timer = setTimeout(() => {
      this.#followUp = null
      this.sync().catch(() => undefined)
    }, delayMs)
    timer.unref()
    this.#followUp = { timer, at }
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
      this.#failures = 0
      for (const listener of this.#listeners) listener(result)
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
      // Converge on our own once salt-api (or dnsmasq) is back, sooner than the reconcile.
      const retryMs = backoffDelay(this.#failures++, 1000, 60_000)
      this.#log.error({ err, retryMs }, 'sync failed')
      this.#scheduleFollowUp(retryMs)
      throw err
    }
  }

  /** New minions the mine does not have yet: ask them for mine.update once, then retry with backoff. */
  async #chaseNewMinions (snapshot: ReadonlyMap<string, unknown>): Promise<void> {
    const now = Date.now()
    const missing: string[] = []
    for (const [id, wait] of this.#awaiting) {
      if (snapshot.has(id) || this.#ledger.has(id)) {
        this.#awaiting.delete(id)
      } else if (now >= wait.deadline) {
        this.#awaiting.delete(id)
        this.#log.warn({ minionId: id, waitedMs: this.#config.mine.waitMs }, 'created minion never appeared in the mine; the periodic resync will pick it up when it does')
      } else {
        missing.push(id)
      }
    }
    if (missing.length === 0) return
    const unasked = missing.filter((id) => !this.#awaiting.get(id)!.asked)
    if (unasked.length > 0) {
      try {
        await this.#client.mineUpdate(unasked)
      } catch (err) {
        this.#log.warn({ err, minions: unasked }, 'mine.update failed; retrying the mine read anyway')
      }
      for (const id of unasked) this.#awaiting.get(id)!.asked = true
    }
    const attempt = Math.min(...missing.map((id) => this.#awaiting.get(id)!.attempts++))
    this.#scheduleFollowUp(backoffDelay(attempt, 500, 8000) + 250)
  }

  async #syncWith (destroyed: Set<string>, started: Date): Promise<SyncResult> {
    const config = this.#config
    let mark = performance.now()
    const lap = (): number => {
      const now = performance.now()
      const ms = Math.round((now - mark) * 10) / 10
      mark = now
      return ms
    }
    const { snapshot, problems } = parseMine(await this.#client.mineGet(config.mine.target, config.mine.fun))
    for (const p of problems) this.#log.warn(p, 'mine data ignored')
    await this.#chaseNewMinions(snapshot)
    const mineMs = lap()

    const update = updateLedger(this.#ledger, { mine: snapshot, destroyed, subnets: config.subnets, byMac: config.mine.byMac, now: started })
    for (const s of update.skipped) this.#log.warn(s, 'minion skipped')
    for (const c of update.conflicts) this.#log.warn(c, 'reservation conflict: the older reservation wins')
    const ledgerMs = lap()
    const renderOptions = config.dnsDomain === undefined ? {} : { domain: config.dnsDomain }
    const reservations = [...update.ledger.values()]
    const rendered = config.format === 'hostsdir'
      ? { entries: renderEntries(reservations, renderOptions), files: null }
      : { entries: null, files: render(config.format, reservations, renderOptions) }
    const renderMs = lap()

    // The ledger is made durable before dnsmasq sees anything that depends on it.
    await writeIfChanged(config.files.state, serializeLedger(update.ledger))
    this.#ledger = update.ledger
    const stateMs = lap()
    const { writeMs, applyMs, ...published } = rendered.entries !== null
      ? await this.#publisher.publishEntries(rendered.entries)
      : await this.#publisher.publish(rendered.files)
    if (published.reloadDueInMs !== null) this.#scheduleFollowUp(published.reloadDueInMs)
    lap()
    const released = await this.#publisher.release(update.removed)
    const releaseMs = lap()

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
      ...published,
      ...released,
      stagesMs: { mine: mineMs, ledger: ledgerMs, render: renderMs, write: stateMs + writeMs, apply: applyMs + releaseMs },
    }
  }
}
