// When syncs run; what one sync does is the pass's business. Events are hints: a created event
// is chased (MineChase) only for a minion whose key the master has accepted, a destroyed event
// releases a reservation only once the key list confirms the key is gone (DestroyClaims), an
// operator's delete waits for a short quiet (DeleteBatch). Passes never overlap (SingleFlight);
// a failed one is retried with backoff, a paced apply gets the pass it is due, and a periodic
// reconcile catches whatever every event source missed.
// Over 200 lines: it is the one place that says when each kind of hint becomes a pass; every
// policy it applies is a module of its own.
import type { Logger } from 'pino'
import { backoffDelay } from '../util/backoff.js'
import type { Clock } from '../util/clock.js'
import { systemTimers, type Timers } from '../util/timers.js'
import { CreatedGate, type HintCounts } from './created-gate.js'
import { DeleteBatch } from './delete-batch.js'
import { DESTROY_QUIET_MAX_MS, DESTROY_QUIET_MS, DestroyClaims } from './destroy-claims.js'
import type { KeyListRead } from './key-watch.js'
import type { PassOutcome, PassRequest } from './pass.js'
import { MineChase } from './mine-chase.js'
import { syncSummary, type SyncResult } from './result.js'
import { SingleFlight } from './single-flight.js'

/**
 * Created minions (with an accepted key) chased at once, and created events waiting for their
 * key to be checked, at most, each. Past either bound a hint is dropped and a full sync asked
 * for instead, which finds every new minion the mine has: a flood can cost a sync, never a
 * refusal of another event.
 */
export const MAX_BACKLOG = 10_000

export { DESTROY_QUIET_MS, DESTROY_QUIET_MAX_MS as DESTROY_BATCH_MAX_MS }
export type { HintCounts }

export interface SchedulerOptions {
  /** Runs one pass with what the events since the last one asked for. */
  pass: (request: PassRequest) => Promise<PassOutcome>
  isReserved: (minionId: string) => boolean
  /** Asks these minions to send their mine data now. */
  mineUpdate: (minionIds: readonly string[]) => Promise<unknown>
  /** A key list read that starts after the call (shared by every caller waiting). */
  readKeys: () => Promise<KeyListRead>
  mineWaitMs: number
  /** How long a destroyed event waits for the key list to confirm it. */
  destroyConfirmMs: number
  clock: Clock
  logger: Logger
  maxBacklog?: number
  timers?: Timers
}

export class SyncScheduler {
  readonly #opts: SchedulerOptions
  readonly #log: Logger
  readonly #maxBacklog: number
  /** Reservations to release at the next pass: confirmed destroys and operators' deletes. */
  readonly #pendingDestroyed = new Set<string>()
  /** Keys seen deleted or rejected (salt/key events), and when. */
  readonly #keyGoneHints = new Map<string, Date>()
  readonly #chase: MineChase
  readonly #deletes: DeleteBatch<SyncResult>
  readonly #flight: SingleFlight<SyncResult>
  readonly #timers: Timers
  readonly #created: CreatedGate<SyncResult>
  readonly #claims: DestroyClaims<SyncResult>
  #followUp: { timer: NodeJS.Timeout, at: number } | null = null
  #reconcile: NodeJS.Timeout | null = null
  #failures = 0
  /** Whether the next pass must read the mine (anything but releasing confirmed destroys). */
  #mineWanted = true
  #closed = false
  #lastResult: SyncResult | null = null
  #lastError: { error: Error, at: number } | null = null
  readonly #listeners: Array<(result: SyncResult) => void> = []
  readonly #failureListeners: Array<(err: Error, durationMs: number) => void> = []

  constructor(opts: SchedulerOptions) {
    this.#opts = opts
    this.#log = opts.logger
    this.#maxBacklog = opts.maxBacklog ?? MAX_BACKLOG
    this.#timers = opts.timers ?? systemTimers
    this.#flight = new SingleFlight(async () => await this.#runOnce())
    this.#deletes = new DeleteBatch(async () => await this.sync(), opts.clock, this.#timers)
    this.#chase = new MineChase({
      mineUpdate: opts.mineUpdate,
      readAgainIn: (ms) => {
        this.#scheduleFollowUp(ms)
      },
      mineWaitMs: opts.mineWaitMs,
      maxChased: this.#maxBacklog,
      clock: opts.clock,
      logger: opts.logger,
    })
    this.#created = new CreatedGate({
      readKeys: opts.readKeys,
      isReserved: opts.isReserved,
      chase: this.#chase,
      sync: async () => await this.sync(),
      maxWaiting: this.#maxBacklog,
      logger: opts.logger,
    })
    this.#claims = new DestroyClaims({
      readKeys: opts.readKeys,
      // Releasing needs no mine read: the key list already said the machine is gone.
      release: async (ids) => {
        for (const id of ids) this.#pendingDestroyed.add(id)
        return await this.#request()
      },
      confirmMs: opts.destroyConfirmMs,
      clock: opts.clock,
      logger: opts.logger,
      timers: this.#timers,
    })
  }

  /** Called after every successful sync (metrics, benchmarks). */
  onSync(listener: (result: SyncResult) => void): void {
    this.#listeners.push(listener)
  }

  /** Called after every failed sync with its error (metrics). */
  onSyncFailed(listener: (err: Error, durationMs: number) => void): void {
    this.#failureListeners.push(listener)
  }

  get lastResult(): SyncResult | null {
    return this.#lastResult
  }

  /** The error of the last sync if it failed; null once one succeeds. */
  get lastError(): { error: Error, at: number } | null {
    return this.#lastError
  }

  /** Events waiting: for a sync, for their key to be checked, or for the key list to confirm a destroy. */
  get backlog(): number {
    return (
      this.#pendingDestroyed.size + this.#chase.size + this.#keyGoneHints.size + this.#created.size + this.#claims.size
    )
  }

  /** What the created events came to, since start. */
  get counts(): HintCounts {
    return this.#created.counts
  }

  /** Destroyed events dropped because the key list never confirmed them. */
  get unconfirmedDestroys(): number {
    return this.#claims.unconfirmed
  }

  /** When the next sync this scheduler set for itself will run (epoch ms), or null when none is set. */
  get nextFollowUpAt(): number | null {
    return this.#followUp?.at ?? null
  }

  /**
   * A created event: synced in (and chased) once the key list says its key is accepted. Resolves
   * with that sync, or null when its key is not accepted; null at once when already reserved.
   */
  created(minionId: string): Promise<SyncResult | null> | null {
    return this.#created.take(minionId)
  }

  /**
   * A destroyed event for a reserved minion: released once a key list read after it shows the
   * key gone (within DESTROY_CONFIRM_S). Resolves with the sync that released it, null when
   * never confirmed. Null at once for a minion with no reservation: nothing to do, nothing spent.
   */
  destroyed(minionId: string): Promise<SyncResult | null> | null {
    if (!this.#opts.isReserved(minionId)) return null
    return this.#claims.claim(minionId)
  }

  /**
   * An operator's delete (DELETE /reservations/<id>): released at the sync that follows a short
   * quiet, without asking the key list. A minion whose key and mine data are still there is
   * reserved again by a later sync, with whatever address is free then.
   */
  release(minionId: string): Promise<SyncResult> {
    this.#pendingDestroyed.add(minionId)
    return this.#deletes.join()
  }

  /**
   * A salt/key delete or reject event (anyone can fire one): the key list is read now, for the
   * destroys waiting on it and for this minion, whose key-gone clock starts only if the list
   * confirms its key is gone. Null when it holds no reservation.
   */
  keyGone(minionId: string): Promise<SyncResult> | null {
    if (!this.#opts.isReserved(minionId)) return null
    this.#claims.lookNow()
    if (!this.#keyGoneHints.has(minionId)) this.#keyGoneHints.set(minionId, new Date(this.#opts.clock()))
    return this.sync()
  }

  /** Periodic full syncs catch events that every source lost (or sent while saltmasq was down). */
  startReconcile(intervalMs: number): void {
    if (intervalMs <= 0 || this.#reconcile !== null) return
    const tick = (): void => {
      this.#reconcile = this.#timers.setTimeout(tick, intervalMs)
      this.#reconcile.unref?.()
      this.sync().catch(() => undefined)
    }
    this.#reconcile = this.#timers.setTimeout(tick, intervalMs)
    this.#reconcile.unref?.()
  }

  /** Stops timers and waits for the sync in flight: nothing is left half-written. */
  async close(): Promise<void> {
    this.#closed = true
    // Operators' deletes already taken are carried out, not dropped; destroyed events not yet
    // confirmed are found by the next start's full sync and key list.
    this.#deletes.flush()
    this.#claims.close()
    this.#chase.close()
    if (this.#reconcile !== null) this.#timers.clearTimeout(this.#reconcile)
    if (this.#followUp !== null) this.#timers.clearTimeout(this.#followUp.timer)
    this.#reconcile = null
    this.#followUp = null
    await this.idle()
  }

  /**
   * Runs a sync now, or joins the follow-up of the one running. The promise is that of the run
   * that will include everything requested up to this call.
   */
  async sync(): Promise<SyncResult> {
    this.#mineWanted = true
    return await this.#request()
  }

  /** A pass now, or the follow-up of the one running; it reads the mine if anything asked for it. */
  async #request(): Promise<SyncResult> {
    return await this.#flight.request()
  }

  /**
   * Resolves once no sync is running or queued, no event waits for a key list read or a delete
   * burst's end, and (unless closing) no mine.update is in flight.
   */
  async idle(): Promise<void> {
    for (;;) {
      const pending = this.#deletes.pending ?? this.#flight.pending ?? this.#created.pending
      if (pending !== null) await pending.catch(() => undefined)
      else if (this.#claims.busy) await this.#claims.idle()
      else if (!this.#closed && this.#chase.busy) await this.#chase.idle()
      else break
    }
  }

  /** A sync in `delayMs` (the earliest one asked for wins). */
  #scheduleFollowUp(delayMs: number): void {
    const at = this.#opts.clock() + delayMs
    if (this.#closed || (this.#followUp !== null && this.#followUp.at <= at)) return
    if (this.#followUp !== null) this.#timers.clearTimeout(this.#followUp.timer)
    const timer = this.#timers.setTimeout(() => {
      this.#followUp = null
      this.sync().catch(() => undefined)
    }, delayMs)
    timer.unref?.()
    this.#followUp = { timer, at }
  }

  async #runOnce(): Promise<SyncResult> {
    const destroyed = new Set(this.#pendingDestroyed)
    const keyGoneHints = new Map(this.#keyGoneHints)
    const readMine = this.#mineWanted || this.#chase.size > 0 || keyGoneHints.size > 0
    this.#pendingDestroyed.clear()
    this.#keyGoneHints.clear()
    this.#mineWanted = false
    let outcome: PassOutcome
    const started = this.#opts.clock()
    try {
      outcome = await this.#opts.pass({ destroyed, keyGoneHints, readMine })
    } catch (err) {
      this.#mineWanted ||= readMine
      // What was asked and not yet carried out stays pending for the next run.
      for (const id of destroyed) if (this.#opts.isReserved(id)) this.#pendingDestroyed.add(id)
      for (const [id, at] of keyGoneHints) {
        if (this.#opts.isReserved(id) && !this.#keyGoneHints.has(id)) this.#keyGoneHints.set(id, at)
      }
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
    if (readMine) this.#chase.afterPass((id) => outcome.inMine(id) || this.#opts.isReserved(id))
    for (const listener of this.#listeners) listener(result)
    this.#log.info(syncSummary(result), 'sync done')
    return result
  }
}
