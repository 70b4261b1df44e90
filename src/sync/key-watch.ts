// Which minions the master still has keys for, for the ledger's key-gone rule. The key list is
// read beside the syncs, not inside them: read in parallel with mine.get it slowed every sync
// by ~120 ms here (salt-api serving both at once), and the rule it feeds counts in minutes. A
// sync uses the latest list; a fresh list that shows a reserved minion's key newly gone asks
// for a sync of its own. A refused or failing key list is said once (with the fix), and the
// rule waits: no reservation is released on a list saltmasq could not read.
import type { Logger } from 'pino'
import type { Ledger } from '../ledger/ledger.js'
import type { KeyLists, SaltClient } from '../salt/client.js'
import type { Clock } from '../util/clock.js'

export interface KeyListRead {
  keys: KeyLists | null
  /** Why there is no key list, or null when it was read (or the rule is off). */
  problem: string | null
  /** When the read of `keys` started (epoch ms); null until one was read. */
  readAt: number | null
}

export class KeyWatch {
  readonly #client: Pick<SaltClient, 'keyListAll'>
  readonly #log: Logger
  readonly #enabled: boolean
  #failing: string | null = null
  #latest: KeyListRead = { keys: null, problem: null, readAt: null }
  #reading: Promise<void> | null = null

  readonly #clock: Clock

  constructor (client: Pick<SaltClient, 'keyListAll'>, log: Logger, enabled: boolean, clock: Clock) {
    this.#client = client
    this.#clock = clock
    this.#log = log
    this.#enabled = enabled
  }

  /** The last key list read (keys null until one was). */
  get latest (): KeyListRead {
    return this.#latest
  }

  /**
   * Reads the key list again. The read starts after the call: a read already under way may have
   * started before a minion's key was accepted, so it is followed by one more, not joined.
   */
  async refresh (): Promise<void> {
    if (!this.#enabled) return
    const after = this.#reading ?? Promise.resolve()
    const next = after.then(async () => { await this.#read() })
    this.#reading = next
    await next
    if (this.#reading === next) this.#reading = null
  }

  /** Whether the latest list shows a reserved minion's key gone whose clock has not started. */
  revealsNewAbsence (ledger: Ledger): boolean {
    const keys = this.#latest.keys
    if (keys === null) return false
    for (const r of ledger.values()) if (r.keyGoneSince === undefined && !keys.has(r.minionId)) return true
    return false
  }

  /**
   * Whether a sync now should read a fresh list first: a reservation's key-gone clock has run
   * out, and the latest list was read before it did (it cannot tell whether the key is back).
   */
  needsFresherList (ledger: Ledger, keyGoneAfterMs: number, now: number): boolean {
    if (!this.#enabled || keyGoneAfterMs <= 0) return false
    const readAt = this.#latest.readAt ?? -Infinity
    for (const r of ledger.values()) {
      if (r.keyGoneSince === undefined) continue
      const due = Date.parse(r.keyGoneSince) + keyGoneAfterMs
      if (due <= now && readAt < due) return true
    }
    return false
  }

  async #read (): Promise<void> {
    const readAt = this.#clock()
    try {
      const keys = await this.#client.keyListAll()
      if (this.#failing !== null) this.#log.info('the key list reads again: destroyed machines whose event was lost are found again')
      this.#failing = null
      this.#latest = { keys, problem: null, readAt }
    } catch (err) {
      const e = err as { code?: string, message: string }
      if (this.#failing !== e.code) {
        this.#log.warn({ code: e.code, err: e.message }, "cannot read the master's key list (wheel key.list_all): machines destroyed while their event was lost are not found until it works. Add wheel to netapi_enable_clients and \"'@wheel': [key.list_all]\" to the eauth user, or set DESTROY_WHEN_KEY_GONE_S=0")
        this.#failing = e.code ?? 'error'
      }
      this.#latest = { keys: null, problem: e.message, readAt: null }
    }
  }
}
