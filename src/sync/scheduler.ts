// When syncs run and how requests fold together; what one sync does is the pass's business.
// At most one pass runs at a time; requests that arrive while one runs are folded into a single
// follow-up, so a burst of events costs two passes, not one per event. New minions the mine does
// not have yet are chased (mine.update, then retries with backoff until MINE_WAIT_MS); a failed
// pass is retried with backoff; a paced apply gets the pass it is due; a periodic reconcile
// catches whatever every event source missed.
import type { Logger } from 'pino'
import { errors } from '../errors.js'
import { backoffDelay } from '../util/backoff.js'
import type { Clock } from '../util/clock.js'
import type { PassOutcome, PassRequest } from './pass.js'
import type { SyncResult } from './result.js'

/** Events waiting for a sync, at most, by default. Past this an event is refused (503), never dropped silently. */
export const MAX_BACKLOG = 10_000

/**
 * Destroyed events come in bursts (`salt-cloud -d` of a map, spread over a second or two by the
 * bus) and each removal costs dnsmasq an apply: their sync waits for this much quiet, but never
 * longer than DESTROY_BATCH_MAX_MS after the first, so a burst is one apply, not one per sync.
 */
export const DESTROY_QUIET_MS = 250
export const DESTROY_BATCH_MAX_MS = 2000

export interface SchedulerOptions {
  /** Runs one pass with what the events since the last one asked for. */
  pass: (request: PassRequest) => Promise<PassOutcome>
  isReserved: (minionId: string) => boolean
  /** Asks these minions to send their mine data now. */
  mineUpdate: (minionIds: readonly string[]) => Promise<unknown>
  mineWaitMs: number
  clock: Clock
  logger: Logger
  maxBacklog?: number
}

interface Awaited {
  deadline: number
  attempts: number
  asked: boolean
}

export class SyncScheduler {
  readonly #opts: SchedulerOptions
  readonly #log: Logger
  readonly #maxBacklog: number
  readonly #pendingDestroyed = new Set<string>()
  /** Keys seen deleted or rejected (salt/key events), and when. */
  readonly #keyGoneHints = new Map<string, Date>()
  /** Created minions not yet in the mine: chased with mine.update and retried until their deadline. */
  readonly #awaiting = new Map<string, Awaited>()
  #followUp: { timer: NodeJS.Timeout, at: number } | null = null
  /** Destroyed events waiting for a moment of quiet before their sync. */
  #destroyBatch: { timer: NodeJS.Timeout, firstAt: number, start: () => void, run: Promise<SyncResult> } | null = null
  #reconcile: NodeJS.Timeout | null = null
  #failures = 0
  #closed = false
  #running: Promise<SyncResult> | null = null
  #queued: Promise<SyncResult> | null = null
  #lastResult: SyncResult | null = null
  #lastError: { error: Error, at: number } | null = null
  readonly #listeners: Array<(result: SyncResult) => void> = []
  readonly #failureListeners: Array<(err: Error, durationMs: number) => void> = []

  constructor (opts: SchedulerOptions) {
    this.#opts = opts
    this.#log = opts.logger
    this.#maxBacklog = opts.maxBacklog ?? MAX_BACKLOG
  }

  /** Called after every successful sync (metrics, benchmarks). */
  onSync (listener: (result: SyncResult) => void): void {
    this.#listeners.push(listener)
  }

  /** Called after every failed sync with its error (metrics). */
  onSyncFailed (listener: (err: Error, durationMs: number) => void): void {
    this.#failureListeners.push(listener)
  }

  get lastResult (): SyncResult | null {
    return this.#lastResult
  }

  /** The error of the last sync if it failed; null once one succeeds. */
  get lastError (): { error: Error, at: number } | null {
    return this.#lastError
  }

  /** Events waiting for a sync; new ones are refused past MAX_BACKLOG. */
  get backlog (): number {
    return this.#pendingDestroyed.size + this.#awaiting.size + this.#keyGoneHints.size
  }

  /** When the next sync this scheduler set for itself will run (epoch ms), or null when none is set. */
  get nextFollowUpAt (): number | null {
    return this.#followUp?.at ?? null
  }

  /**
   * A new machine: a sync picks it up from the mine. If the mine does not have it yet, the
   * minion is asked for mine.update and the mine read again with backoff for up to MINE_WAIT_MS.
   * Null when the minion is already reserved: reservations are sticky, nothing can change.
   */
  created (minionId: string): Promise<SyncResult> | null {
    if (this.#opts.isReserved(minionId)) return null
    if (!this.#awaiting.has(minionId)) {
      this.#admit()
      this.#awaiting.set(minionId, { deadline: this.#opts.clock() + this.#opts.mineWaitMs, attempts: 0, asked: false })
    }
    return this.sync()
  }

  /**
   * A destroyed machine (or an operator's delete): its reservation goes at the sync that follows
   * a short quiet (DESTROY_QUIET_MS), so a burst of destroys is taken in one sync. Throws
   * QueueFull at once when the backlog is full.
   */
  destroyed (minionId: string): Promise<SyncResult> {
    if (!this.#pendingDestroyed.has(minionId)) this.#admit()
    this.#pendingDestroyed.add(minionId)
    this.#awaiting.delete(minionId)
    return this.#syncAfterQuiet()
  }

  /** The sync of the destroy batch this call joins; each call pushes the batch's start back, up to its limit. */
  async #syncAfterQuiet (): Promise<SyncResult> {
    const now = this.#opts.clock()
    let batch = this.#destroyBatch
    if (batch === null) {
      let start = (): void => {}
      const run = new Promise<void>((resolve) => { start = resolve }).then(async () => await this.sync())
      batch = { timer: setTimeout(() => undefined, 0), firstAt: now, start, run }
      this.#destroyBatch = batch
    }
    clearTimeout(batch.timer)
    batch.timer = setTimeout(() => { this.#runDestroyBatch() }, Math.max(0, Math.min(DESTROY_QUIET_MS, batch.firstAt + DESTROY_BATCH_MAX_MS - now)))
    return await batch.run
  }

  #runDestroyBatch (): void {
    const batch = this.#destroyBatch
    if (batch === null) return
    clearTimeout(batch.timer)
    this.#destroyBatch = null
    batch.start()
  }

  /**
   * The master deleted or rejected this minion's key (a salt/key event): its key-gone clock
   * starts now, if the key list confirms the key is gone. Null when it holds no reservation.
   */
  keyGone (minionId: string): Promise<SyncResult> | null {
    if (!this.#opts.isReserved(minionId)) return null
    if (!this.#keyGoneHints.has(minionId)) {
      this.#admit()
      this.#keyGoneHints.set(minionId, new Date(this.#opts.clock()))
    }
    return this.sync()
  }

  #admit (): void {
    if (this.backlog >= this.#maxBacklog) throw new errors.QueueFull(this.backlog)
  }

  /** Periodic full syncs catch events that every source lost (or sent while saltmasq was down). */
  startReconcile (intervalMs: number): void {
    if (intervalMs <= 0 || this.#reconcile !== null) return
    this.#reconcile = setInterval(() => { this.sync().catch(() => undefined) }, intervalMs)
    this.#reconcile.unref()
  }

  /** Stops timers and waits for the sync in flight: nothing is left half-written. */
  async close (): Promise<void> {
    this.#closed = true
    // Destroys already taken are carried out, not dropped.
    this.#runDestroyBatch()
    if (this.#reconcile !== null) clearInterval(this.#reconcile)
    if (this.#followUp !== null) clearTimeout(this.#followUp.timer)
    this.#reconcile = null
    this.#followUp = null
    await this.idle()
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

  /** Resolves once no sync is running, queued, or waiting for a destroy burst to end. */
  async idle (): Promise<void> {
    while (this.#running !== null || this.#queued !== null || this.#destroyBatch !== null) {
      await (this.#destroyBatch?.run ?? this.#queued ?? this.#running)?.catch(() => undefined)
    }
  }

  /** A sync in `delayMs` (the earliest one asked for wins). */
  #scheduleFollowUp (delayMs: number): void {
    const at = this.#opts.clock() + delayMs
    if (this.#closed || (this.#followUp !== null && this.#followUp.at <= at)) return
    if (this.#followUp !== null) clearTimeout(this.#followUp.timer)
    const timer = setTimeout(() => {
      this.#followUp = null
      this.sync().catch(() => undefined)
    }, delayMs)
    timer.unref()
    this.#followUp = { timer, at }
  }

  async #runOnce (): Promise<SyncResult> {
    const destroyed = new Set(this.#pendingDestroyed)
    const keyGoneHints = new Map(this.#keyGoneHints)
    this.#pendingDestroyed.clear()
    this.#keyGoneHints.clear()
    let outcome: PassOutcome
    const started = this.#opts.clock()
    try {
      outcome = await this.#opts.pass({ destroyed, keyGoneHints })
    } catch (err) {
      // What was asked and not yet carried out stays pending for the next run.
      for (const id of destroyed) if (this.#opts.isReserved(id)) this.#pendingDestroyed.add(id)
      for (const [id, at] of keyGoneHints) if (this.#opts.isReserved(id) && !this.#keyGoneHints.has(id)) this.#keyGoneHints.set(id, at)
      this.#lastError = { error: err as Error, at: this.#opts.clock() }
      // Converge on our own once salt-api (or dnsmasq) is back, sooner than the reconcile.
      const retryMs = backoffDelay(this.#failures++, 1000, 60_000)
      this.#log.error({ err, retryMs }, 'sync failed')
      this.#scheduleFollowUp(retryMs)
      for (const listener of this.#failureListeners) listener(err as Error, this.#opts.clock() - started)
      throw err
    }
    const { result } = outcome
    this.#lastResult = result
    this.#lastError = null
    this.#failures = 0
    if (result.applyDueInMs !== null) this.#scheduleFollowUp(result.applyDueInMs)
    if (result.keyGoneDueInMs !== null) this.#scheduleFollowUp(result.keyGoneDueInMs)
    await this.#chaseNewMinions(outcome.inMine)
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
  }

  /** New minions the mine did not have: ask them for mine.update once, then read the mine again with backoff. */
  async #chaseNewMinions (inMine: (id: string) => boolean): Promise<void> {
    const now = this.#opts.clock()
    const missing: string[] = []
    for (const [id, wait] of this.#awaiting) {
      if (inMine(id) || this.#opts.isReserved(id)) {
        this.#awaiting.delete(id)
      } else if (now >= wait.deadline) {
        this.#awaiting.delete(id)
        this.#log.warn({ minionId: id, waitedMs: this.#opts.mineWaitMs }, 'created minion never appeared in the mine; the periodic resync will pick it up when it does')
      } else {
        missing.push(id)
      }
    }
    if (missing.length === 0) return
    const unasked = missing.filter((id) => !this.#awaiting.get(id)!.asked)
    if (unasked.length > 0) {
      try {
        await this.#opts.mineUpdate(unasked)
      } catch (err) {
        this.#log.warn({ err, minions: unasked }, 'mine.update failed; retrying the mine read anyway')
      }
      for (const id of unasked) {
        const wait = this.#awaiting.get(id)
        if (wait !== undefined) wait.asked = true
      }
    }
    const attempt = Math.min(...missing.map((id) => this.#awaiting.get(id)?.attempts ?? 0))
    for (const id of missing) {
      const wait = this.#awaiting.get(id)
      if (wait !== undefined) wait.attempts++
    }
    this.#scheduleFollowUp(backoffDelay(attempt, 500, 8000) + 250)
  }
}
