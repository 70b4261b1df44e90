// Destroyed events waiting for the master's key list to agree. Any minion can put a destroyed
// event on the bus, and salt-cloud itself fires it before it deletes the key, so an event only
// makes saltmasq look: a reservation goes once a key list read after the event no longer has
// the minion's key accepted. Until then the list is read again (one read for every claim
// waiting), quickly at first, since salt-cloud deletes the key right after the event, or after
// a whole `-d a b c` batch; a claim the key list never confirms is dropped after confirmMs.
import { systemTimers, type Timers } from '../util/timers.js'
import type { Logger } from 'pino'
import type { Clock } from '../util/clock.js'
import type { KeyListRead } from './key-watch.js'

/**
 * A burst of events (`salt-cloud -d` of a map) is read for once: the first read waits for this
 * much quiet, but never longer than QUIET_MAX_MS after the first claim.
 */
export const DESTROY_QUIET_MS = 250
export const DESTROY_QUIET_MAX_MS = 2000

/** How soon the key list is read again while a claim of this age waits. */
export function recheckDelay(ageMs: number): number {
  if (ageMs < 5_000) return 250
  if (ageMs < 60_000) return 1_000
  return 15_000
}

export interface DestroyClaimsOptions<R> {
  /** A key list read that starts after the call. */
  readKeys: () => Promise<KeyListRead>
  /** Releases these reservations (the sync that does it). */
  release: (minionIds: ReadonlySet<string>) => Promise<R>
  confirmMs: number
  clock: Clock
  logger: Logger
  timers?: Timers
}

interface Claim<R> {
  at: number
  settle: (released: R | null) => void
  fail: (err: unknown) => void
  done: Promise<R | null>
}

/** `R`: what releasing gives back (the sync's result). */
export class DestroyClaims<R> {
  readonly #opts: DestroyClaimsOptions<R>
  readonly #timers: Timers
  readonly #claims = new Map<string, Claim<R>>()
  #timer: { handle: NodeJS.Timeout, at: number } | null = null
  /** When the oldest claim not yet read for arrived (the quiet's limit). */
  #unreadSince: number | null = null
  #checking: Promise<void> | null = null
  #closed = false
  #lastReadMs = 0
  /** Claims dropped because the key list never confirmed them. */
  unconfirmed = 0

  constructor(opts: DestroyClaimsOptions<R>) {
    this.#opts = opts
    this.#timers = opts.timers ?? systemTimers
  }

  get size(): number {
    return this.#claims.size
  }

  has(minionId: string): boolean {
    return this.#claims.has(minionId)
  }

  /**
   * A destroyed event for this reserved minion. Resolves with what released it once the key
   * list showed the key gone, null when the key list never confirmed it; rejects when the
   * releasing sync failed (the reservation is then released by the sync's retry).
   */
  async claim(minionId: string): Promise<R | null> {
    let claim = this.#claims.get(minionId)
    if (claim === undefined) {
      let settle: (released: R | null) => void = () => {}
      let fail: (err: unknown) => void = () => {}
      const done = new Promise<R | null>((resolve, reject) => {
        settle = resolve
        fail = reject
      })
      claim = { at: this.#opts.clock(), settle, fail, done }
      this.#claims.set(minionId, claim)
      const now = claim.at
      this.#unreadSince ??= now
      this.#schedule(Math.min(DESTROY_QUIET_MS, this.#unreadSince + DESTROY_QUIET_MAX_MS - now), true)
    }
    return await claim.done
  }

  /** The key list may have changed (a salt/key event): read it now rather than at the next tick. */
  lookNow(): void {
    if (this.#claims.size > 0) this.#schedule(0, true)
  }

  /** Stops reading; claims still waiting are dropped (the next start's full sync finds what is gone). */
  close(): void {
    this.#closed = true
    if (this.#timer !== null) this.#timers.clearTimeout(this.#timer.handle)
    this.#timer = null
    for (const claim of this.#claims.values()) claim.settle(null)
    this.#claims.clear()
  }

  /** Whether a read or release is under way. */
  get busy(): boolean {
    return this.#checking !== null
  }

  /** Resolves once no read or release is under way. */
  async idle(): Promise<void> {
    while (this.#checking !== null) await this.#checking
  }

  /** A read in `delayMs`; `push` moves a set read later (the quiet), otherwise the earliest wins. */
  #schedule(delayMs: number, push = false): void {
    if (this.#closed) return
    const at = this.#opts.clock() + Math.max(0, delayMs)
    if (this.#timer !== null) {
      if (!push && this.#timer.at <= at) return
      this.#timers.clearTimeout(this.#timer.handle)
    }
    const handle = this.#timers.setTimeout(
      () => {
        this.#timer = null
        this.#check()
      },
      Math.max(0, delayMs),
    )
    this.#timer = { handle, at }
  }

  #check(): void {
    if (this.#checking !== null) {
      // The read under way may predate the newest claims: look again right after it.
      void this.#checking.then(() => {
        this.#schedule(0)
      })
      return
    }
    this.#checking = this.#readAndRelease().finally(() => {
      this.#checking = null
    })
  }

  async #readAndRelease(): Promise<void> {
    this.#unreadSince = null
    const started = this.#opts.clock()
    const read = await this.#opts.readKeys()
    const now = this.#opts.clock()
    this.#lastReadMs = now - started
    const confirmed = new Map<string, Claim<R>>()
    for (const [id, claim] of this.#claims) {
      if (read.accepted !== null && read.readAt !== null && read.readAt >= claim.at && !read.accepted.has(id)) {
        confirmed.set(id, claim)
      } else if (now - claim.at >= this.#opts.confirmMs) {
        this.#claims.delete(id)
        this.unconfirmed++
        this.#opts.logger.warn(
          { minionId: id, waitedS: Math.round((now - claim.at) / 1000) },
          'destroyed event not confirmed by the key list: the key is still accepted, so the reservation stays',
        )
        claim.settle(null)
      }
    }
    for (const id of confirmed.keys()) this.#claims.delete(id)
    this.#next(now)
    if (confirmed.size === 0) return
    try {
      const released = await this.#opts.release(new Set(confirmed.keys()))
      for (const claim of confirmed.values()) claim.settle(released)
    } catch (err) {
      for (const claim of confirmed.values()) claim.fail(err)
    }
  }

  /**
   * The next read, paced by the youngest claim still waiting, and never sooner than the last
   * read took: claims a minion can file keep the master reading at most half the time.
   */
  #next(now: number): void {
    let youngest = -Infinity
    for (const claim of this.#claims.values()) youngest = Math.max(youngest, claim.at)
    if (youngest === -Infinity) return
    this.#schedule(Math.max(recheckDelay(now - youngest), this.#lastReadMs))
  }
}
