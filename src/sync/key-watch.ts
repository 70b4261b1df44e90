// The master's accepted key list: with each minion's own mine entry, the only state a
// reservation changes on (events are hints that make saltmasq read it sooner). Reads are
// shared: every caller waiting at a moment gets one read that started after it asked, so a
// flood of events costs one read, not one each. A list that would take many reservations
// away at once (or an empty one) is held until a second read at least HOLD_MS later agrees:
// a truncated answer must not release a fleet.
import { sleep, type Timers } from '../util/timers.js'
import type { Logger } from 'pino'
import type { Ledger } from '../ledger/ledger.js'
import type { AcceptedKeys, SaltClient } from '../salt/client.js'
import type { Clock } from '../util/clock.js'

export interface KeyListRead {
  /** Minion ids whose key is accepted; null until a list was read (or while none can be). */
  accepted: AcceptedKeys | null
  /** Why there is no key list, or null when it was read. */
  problem: string | null
  /** When the read of `accepted` started (epoch ms); null until one was read. */
  readAt: number | null
}

/** A list is held when it would newly take away more than both of these... */
export const MASS_RELEASE_SHARE = 0.1
export const MASS_RELEASE_COUNT = 50
/** ...until a read this much later agrees. */
export const MASS_RELEASE_HOLD_MS = 60_000
/**
 * The least time between the end of one read and the start of the next (or the last read's
 * own duration, if longer): hints that trickle in, forged or not, keep the master reading at
 * most half the time, and never more than four times a second.
 */
export const MIN_READ_GAP_MS = 250

export interface KeyWatchOptions {
  client: Pick<SaltClient, 'keyListAll'>
  logger: Logger
  clock: Clock
  /** The reservations a list is weighed against. */
  ledger: () => Ledger
  timers?: Timers
}

/** How many reservations a list would newly take away (whose key-gone clock has not started). */
function newlyAbsent(ledger: Ledger, accepted: AcceptedKeys): number {
  let n = 0
  for (const r of ledger.values()) if (r.keyGoneSince === undefined && !accepted.has(r.minionId)) n++
  return n
}

export class KeyWatch {
  readonly #opts: KeyWatchOptions
  readonly #log: Logger
  #failing: string | null = null
  #latest: KeyListRead = { accepted: null, problem: null, readAt: null }
  #inFlight: Promise<KeyListRead> | null = null
  #lastEnd = -Infinity
  #lastDuration = 0
  #next: Promise<KeyListRead> | null = null
  /** When a list that would release too much was first read; null while none is held. */
  #heldSince: number | null = null
  /** Lists held back by the mass-release guard. */
  heldReads = 0
  /** Reads made (each shared by every caller waiting for it). */
  reads = 0

  constructor(opts: KeyWatchOptions) {
    this.#opts = opts
    this.#log = opts.logger
  }

  /** The last key list that can be acted on (accepted null until one was read). */
  get latest(): KeyListRead {
    return this.#latest
  }

  /**
   * A key list read that starts after this call. A read already under way may have started
   * before a key was accepted or deleted, so callers that come during it share the one after.
   */
  async refresh(): Promise<KeyListRead> {
    if (this.#inFlight === null) return await this.#start()
    this.#next ??= this.#inFlight
      .catch(() => undefined)
      .then(async () => {
        this.#next = null
        return await this.#start()
      })
    return await this.#next
  }

  async #start(): Promise<KeyListRead> {
    const run = this.#paced()
      .then(async () => await this.#read())
      .finally(() => {
        this.#lastEnd = this.#opts.clock()
        if (this.#inFlight === run) this.#inFlight = null
      })
    this.#inFlight = run
    return await run
  }

  async #paced(): Promise<void> {
    const wait = this.#lastEnd + Math.max(MIN_READ_GAP_MS, this.#lastDuration) - this.#opts.clock()
    if (wait > 0) await sleep(wait, this.#opts.timers)
  }

  /** Whether the latest list shows a reserved minion's key gone whose clock has not started. */
  revealsNewAbsence(ledger: Ledger): boolean {
    const accepted = this.#latest.accepted
    return accepted !== null && newlyAbsent(ledger, accepted) > 0
  }

  /**
   * Whether a sync now should read a fresh list first: a reservation's key-gone clock has run
   * out, and the latest list was read before it did (it cannot tell whether the key is back).
   */
  needsFresherList(ledger: Ledger, keyGoneAfterMs: number, now: number): boolean {
    if (keyGoneAfterMs <= 0) return false
    const readAt = this.#latest.readAt ?? -Infinity
    for (const r of ledger.values()) {
      if (r.keyGoneSince === undefined) continue
      const due = Date.parse(r.keyGoneSince) + keyGoneAfterMs
      if (due <= now && readAt < due) return true
    }
    return false
  }

  async #read(): Promise<KeyListRead> {
    const readAt = this.#opts.clock()
    this.reads++
    let accepted: AcceptedKeys
    try {
      accepted = await this.#opts.client.keyListAll()
      this.#lastDuration = this.#opts.clock() - readAt
    } catch (err) {
      const e = err as { code?: string, message: string }
      if (this.#failing !== e.code) this.#log.warn({ code: e.code, err: e.message }, this.#advice(e.code))
      this.#failing = e.code ?? 'error'
      this.#latest = { accepted: null, problem: e.message, readAt: null }
      return this.#latest
    }
    if (this.#failing !== null) this.#log.info('the key list reads again: destroyed events are confirmed again')
    this.#failing = null
    if (this.#holds(accepted, readAt)) return this.#latest
    this.#latest = { accepted, problem: null, readAt }
    return this.#latest
  }

  /** The mass-release guard: true when this list must not be acted on yet. */
  #holds(accepted: AcceptedKeys, readAt: number): boolean {
    const ledger = this.#opts.ledger()
    const gone = newlyAbsent(ledger, accepted)
    const suspect =
      (accepted.size === 0 && ledger.size > 0) || (gone > MASS_RELEASE_COUNT && gone > ledger.size * MASS_RELEASE_SHARE)
    if (!suspect) {
      this.#heldSince = null
      return false
    }
    if (this.#heldSince !== null && readAt - this.#heldSince >= MASS_RELEASE_HOLD_MS) {
      this.#log.warn(
        { wouldRelease: gone, reservations: ledger.size, accepted: accepted.size },
        'a second key list read a minute later agrees that these keys are gone: acting on it',
      )
      this.#heldSince = null
      return false
    }
    if (this.#heldSince === null) {
      this.#heldSince = readAt
      this.#log.warn(
        { wouldRelease: gone, reservations: ledger.size, accepted: accepted.size, holdS: MASS_RELEASE_HOLD_MS / 1000 },
        'the key list would take away many reservations at once (or is empty): releasing nothing until a read a '
        + 'minute from now agrees',
      )
    }
    this.heldReads++
    return true
  }

  #advice(code: string | undefined): string {
    if (code === 'SALTMASQ_SALT_CLIENT_DISABLED' || code === 'SALTMASQ_SALT_FORBIDDEN') {
      return (
        'cannot read the master\'s key list (wheel key.list_all): destroyed events cannot be confirmed and '
        + 'no reservation is released until it works. '
        + 'Add wheel to netapi_enable_clients and "\'@wheel\': [\'^key\\.list_all$\']" to the eauth user'
      )
    }
    return 'cannot read the master\'s key list (wheel key.list_all): no reservation is released until it reads again'
  }
}
