// A created event is a hint anyone on the bus can forge: it costs one shared key-list read, and
// only a minion whose key the master has accepted is synced in and chased. Bounded: past
// `maxWaiting` events waiting for the read, or minions chased, a hint is dropped and a full sync
// (which finds every new minion the mine has) runs instead, so a flood costs a sync, never a refusal.
import type { Logger } from 'pino'
import type { KeyListRead } from './key-watch.js'
import type { MineChase } from './mine-chase.js'

/** What the created events came to, since start. */
export interface HintCounts {
  /** Created events naming a minion with no accepted key: nothing chased. */
  createdWithoutKey: number
  /** Hints dropped past a bound (a full sync was asked for instead). */
  dropped: number
}

export interface CreatedGateOptions<R> {
  /** A key list read that starts after the call (shared by every caller waiting). */
  readKeys: () => Promise<KeyListRead>
  isReserved: (minionId: string) => boolean
  chase: Pick<MineChase, 'has' | 'add'>
  sync: () => Promise<R>
  maxWaiting: number
  logger: Logger
}

export class CreatedGate<R> {
  readonly #opts: CreatedGateOptions<R>
  /** Created events waiting for the key list to say whether their minion's key is accepted. */
  readonly #waiting = new Map<string, Promise<R | null>>()
  readonly counts: HintCounts = { createdWithoutKey: 0, dropped: 0 }

  constructor(opts: CreatedGateOptions<R>) {
    this.#opts = opts
  }

  get size(): number {
    return this.#waiting.size
  }

  /** One of the checks waiting, or null. */
  get pending(): Promise<R | null> | null {
    return this.#waiting.values().next().value ?? null
  }

  /** The sync that takes the minion in, or null (no accepted key); null at once when already reserved. */
  take(minionId: string): Promise<R | null> | null {
    if (this.#opts.isReserved(minionId)) return null
    if (this.#opts.chase.has(minionId)) return this.#opts.sync()
    const waiting = this.#waiting.get(minionId)
    if (waiting !== undefined) return waiting
    if (this.#waiting.size >= this.#opts.maxWaiting)
      return this.#drop(minionId, 'created events waiting for the key list')
    const check = this.#opts
      .readKeys()
      .finally(() => {
        this.#waiting.delete(minionId)
      })
      .then(async (read) => await this.#admit(minionId, read))
    this.#waiting.set(minionId, check)
    return check
  }

  async #admit(minionId: string, read: KeyListRead): Promise<R | null> {
    if (this.#opts.isReserved(minionId)) return null
    // No key list can be read (wheel not granted): one sync, which reserves only what the mine
    // has (the mine.get runner returns accepted minions only), but no chase.
    if (read.accepted === null) return await this.#opts.sync()
    if (!read.accepted.has(minionId)) {
      this.counts.createdWithoutKey++
      this.#opts.logger.debug({ minionId }, 'created event for a minion with no accepted key: ignored')
      return null
    }
    if (!this.#opts.chase.add(minionId)) return await this.#drop(minionId, 'created minions chased')
    return await this.#opts.sync()
  }

  async #drop(minionId: string, what: string): Promise<R> {
    this.counts.dropped++
    if (this.counts.dropped === 1 || this.counts.dropped % 1000 === 0) {
      this.#opts.logger.warn(
        { minionId, dropped: this.counts.dropped, bound: this.#opts.maxWaiting },
        `too many ${what}: hint dropped, a full sync runs instead`,
      )
    }
    return await this.#opts.sync()
  }
}
