// When syncs run and how requests fold together; what one sync does is the pass's business.
// At most one pass runs at a time; requests that arrive while one runs are folded into a single
// follow-up, so a burst of events costs two passes, not one per event. Events are hints: a
// created event is chased (mine.update, then mine reads with backoff until MINE_WAIT_MS) only
// for a minion whose key the master has accepted, and a destroyed event releases a reservation
// only once the key list confirms the key is gone (DestroyClaims). A failed pass is retried
// with backoff; a paced apply gets the pass it is due; a periodic reconcile catches whatever
// every event source missed.
// Over 250 lines: single flight, the created gate, the operator's delete batch, the mine chase
// and backoff; DestroyClaims is already its own module, issue #20 takes out SingleFlight and MineChase.
import type { Logger } from 'pino'
import { backoffDelay } from '../util/backoff.js'
import type { Clock } from '../util/clock.js'
import { DESTROY_QUIET_MAX_MS, DESTROY_QUIET_MS, DestroyClaims } from './destroy-claims.js'
import type { Timers } from '../util/timers.js'
import type { KeyListRead } from './key-watch.js'
import type { PassOutcome, PassRequest } from './pass.js'
import type { SyncResult } from './result.js'

/**
 * Created minions (with an accepted key) chased at once, and created events waiting for their
 * key to be checked, at most, each. Past either bound a hint is dropped and a full sync asked
 * for instead, which finds every new minion the mine has: a flood can cost a sync, never a
 * refusal of another event.
 */
export const MAX_BACKLOG = 10_000

export { DESTROY_QUIET_MS, DESTROY_QUIET_MAX_MS as DESTROY_BATCH_MAX_MS }

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

/** A created minion whose mine data has not come yet. */
interface MineWait {
  deadline: number
  attempts: number
  asked: boolean
}

/** What the events came to, since start. */
export interface HintCounts {
  /** Created events naming a minion with no accepted key: nothing chased. */
  createdWithoutKey: number
  /** Hints dropped past a bound (a full sync was asked for instead). */
  dropped: number
}

export class SyncScheduler {
  readonly #opts: SchedulerOptions
  readonly #log: Logger
  readonly #maxBacklog: number
  /** Reservations to release at the next pass: confirmed destroys and operators' deletes. */
  readonly #pendingDestroyed = new Set<string>()
  /** Keys seen deleted or rejected (salt/key events), and when. */
  readonly #keyGoneHints = new Map<string, Date>()
  /** Created minions with an accepted key, not yet in the mine: chased until their deadline. */
  readonly #awaiting = new Map<string, MineWait>()
  /** Created events waiting for the key list to say whether their minion's key is accepted. */
  readonly #keyChecks = new Map<string, Promise<SyncResult | null>>()
  readonly #claims: DestroyClaims<SyncResult>
  readonly counts: HintCounts = { createdWithoutKey: 0, dropped: 0 }
  #followUp: { timer: NodeJS.Timeout, at: number } | null = null
  /** Operators' deletes waiting for a moment of quiet before their sync. */
  #destroyBatch: { timer: NodeJS.Timeout | null, firstAt: number, start: () => void, run: Promise<SyncResult> } | null = null
  #reconcile: NodeJS.Timeout | null = null
  #failures = 0
  /** Whether the next pass must read the mine (anything but releasing confirmed destroys). */
  #mineWanted = true
  #closed = false
  #running: Promise<SyncResult> | null = null
  #queued: Promise<SyncResult> | null = null
  #lastResult: SyncResult | null = null
  #lastError: { error: Error, at: number } | null = null
  readonly #listeners: Array<(result: SyncResult) => void> = []
  readonly #failureListeners: Array<(err: Error, durationMs: number) => void> = []

  constructor(opts: SchedulerOptions) {
    this.#opts = opts
    this.#log = opts.logger
    this.#maxBacklog = opts.maxBacklog ?? MAX_BACKLOG
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
      ...(opts.timers === undefined ? {} : { timers: opts.timers }),
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
    return this.#pendingDestroyed.size + this.#awaiting.size + this.#keyGoneHints.size + this.#keyChecks.size + this.#claims.size
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
   * A created event: the key list is read (one read for every event waiting) and a minion whose
   * key is accepted is synced in, and chased with mine.update if the mine does not have it yet.
   * Resolves with that sync, or null when its key is not accepted (nothing else is spent).
   * Null at once when the minion is already reserved: reservations are sticky.
   */
  created(minionId: string): Promise<SyncResult | null> | null {
    if (this.#opts.isReserved(minionId)) return null
    if (this.#awaiting.has(minionId)) return this.sync()
    const waiting = this.#keyChecks.get(minionId)
    if (waiting !== undefined) return waiting
    if (this.#keyChecks.size >= this.#maxBacklog) return this.#drop(minionId, 'created events waiting for the key list')
    const check = this.#opts.readKeys().then(async (read) => {
      this.#keyChecks.delete(minionId)
      return await this.#admitCreated(minionId, read)
    }, async (err: unknown) => {
      this.#keyChecks.delete(minionId)
      throw err
    })
    this.#keyChecks.set(minionId, check)
    return check
  }

  async #admitCreated(minionId: string, read: KeyListRead): Promise<SyncResult | null> {
    if (this.#opts.isReserved(minionId)) return null
    // No key list can be read (wheel not granted): one sync, which reserves only what the mine
    // has (the mine.get runner returns accepted minions only), but no chase.
    if (read.accepted === null) return await this.sync()
    if (!read.accepted.has(minionId)) {
      this.counts.createdWithoutKey++
      this.#log.debug({ minionId }, 'created event for a minion with no accepted key: ignored')
      return null
    }
    if (!this.#awaiting.has(minionId)) {
      if (this.#awaiting.size >= this.#maxBacklog) return await this.#drop(minionId, 'created minions chased')
      this.#awaiting.set(minionId, { deadline: this.#opts.clock() + this.#opts.mineWaitMs, attempts: 0, asked: false })
    }
    return await this.sync()
  }

  /** A hint past its bound: dropped, and a full sync (which finds every new minion the mine has) asked for. */
  async #drop(minionId: string, what: string): Promise<SyncResult> {
    this.counts.dropped++
    if (this.counts.dropped === 1 || this.counts.dropped % 1000 === 0) {
      this.#log.warn({ minionId, dropped: this.counts.dropped, bound: this.#maxBacklog }, `too many ${what}: hint dropped, a full sync runs instead`)
    }
    return await this.sync()
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
    return this.#syncAfterQuiet()
  }

  /** The sync of the delete batch this call joins; each call pushes the batch's start back, up to its limit. */
  async #syncAfterQuiet(): Promise<SyncResult> {
    const now = this.#opts.clock()
    let batch = this.#destroyBatch
    if (batch === null) {
      let start = (): void => {}
      const run = new Promise<void>((resolve) => { start = resolve }).then(async () => await this.sync())
      batch = { timer: null, firstAt: now, start, run }
      this.#destroyBatch = batch
    }
    if (batch.timer !== null) clearTimeout(batch.timer)
    batch.timer = setTimeout(() => { this.#runDestroyBatch() }, Math.max(0, Math.min(DESTROY_QUIET_MS, batch.firstAt + DESTROY_QUIET_MAX_MS - now)))
    return await batch.run
  }

  #runDestroyBatch(): void {
    const batch = this.#destroyBatch
    if (batch === null) return
    if (batch.timer !== null) clearTimeout(batch.timer)
    this.#destroyBatch = null
    batch.start()
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
    this.#reconcile = setInterval(() => { this.sync().catch(() => undefined) }, intervalMs)
    this.#reconcile.unref()
  }

  /** Stops timers and waits for the sync in flight: nothing is left half-written. */
  async close(): Promise<void> {
    this.#closed = true
    // Operators' deletes already taken are carried out, not dropped; destroyed events not yet
    // confirmed are found by the next start's full sync and key list.
    this.#runDestroyBatch()
    this.#claims.close()
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
  async sync(): Promise<SyncResult> {
    this.#mineWanted = true
    return await this.#request()
  }

  /** A pass now, or the follow-up of the one running; it reads the mine if anything asked for it. */
  async #request(): Promise<SyncResult> {
    if (this.#running === null) {
      this.#running = this.#runOnce().finally(() => { this.#running = null })
      return await this.#running
    }
    this.#queued ??= this.#running.catch(() => undefined).then(async () => {
      this.#queued = null
      return await this.#request()
    })
    return await this.#queued
  }

  /** Resolves once no sync is running or queued, and no event waits for a key list read or a delete burst's end. */
  async idle(): Promise<void> {
    for (;;) {
      const pending = this.#destroyBatch?.run ?? this.#queued ?? this.#running ?? this.#keyChecks.values().next().value ?? null
      if (pending !== null) await pending.catch(() => undefined)
      else if (this.#claims.busy) await this.#claims.idle()
      else break
    }
  }

  /** A sync in `delayMs` (the earliest one asked for wins). */
  #scheduleFollowUp(delayMs: number): void {
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

  async #runOnce(): Promise<SyncResult> {
    const destroyed = new Set(this.#pendingDestroyed)
    const keyGoneHints = new Map(this.#keyGoneHints)
    const readMine = this.#mineWanted || this.#awaiting.size > 0 || keyGoneHints.size > 0
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
  async #chaseNewMinions(inMine: (id: string) => boolean): Promise<void> {
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
