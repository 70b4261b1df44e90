// Created minions (with an accepted key) that the mine does not have yet: a new minion's first
// mine push may be an hour away, so each is asked for mine.update once, and the mine is read
// again with backoff until it appears or MINE_WAIT_MS passes. mine.update runs beside the passes,
// never inside one, so neither a sync nor a shutdown waits for the minions to answer.
import type { Logger } from 'pino'
import { backoffDelay } from '../util/backoff.js'
import type { Clock } from '../util/clock.js'

interface MineWait {
  deadline: number
  attempts: number
  asked: boolean
}

export interface MineChaseOptions {
  mineUpdate: (minionIds: readonly string[]) => Promise<unknown>
  /** Asks for a pass (one that reads the mine) in this many ms. */
  readAgainIn: (delayMs: number) => void
  mineWaitMs: number
  maxChased: number
  clock: Clock
  logger: Logger
}

export class MineChase {
  readonly #opts: MineChaseOptions
  readonly #waiting = new Map<string, MineWait>()
  readonly #updates = new Set<Promise<void>>()
  #closed = false

  constructor(opts: MineChaseOptions) {
    this.#opts = opts
  }

  get size(): number {
    return this.#waiting.size
  }

  has(minionId: string): boolean {
    return this.#waiting.has(minionId)
  }

  /** Starts chasing a minion; false when the bound is reached (the caller falls back to a full sync). */
  add(minionId: string): boolean {
    if (this.#waiting.has(minionId)) return true
    if (this.#waiting.size >= this.#opts.maxChased) return false
    this.#waiting.set(minionId, { deadline: this.#opts.clock() + this.#opts.mineWaitMs, attempts: 0, asked: false })
    return true
  }

  /** After a pass that read the mine: forget the minions found, ask the new ones, read again with backoff. */
  afterPass(found: (minionId: string) => boolean): void {
    const now = this.#opts.clock()
    const missing: string[] = []
    for (const [id, wait] of this.#waiting) {
      if (found(id)) {
        this.#waiting.delete(id)
      } else if (now >= wait.deadline) {
        this.#waiting.delete(id)
        this.#opts.logger.warn(
          { minionId: id, waitedMs: this.#opts.mineWaitMs },
          'created minion never appeared in the mine; the periodic resync will pick it up when it does',
        )
      } else {
        missing.push(id)
      }
    }
    if (missing.length === 0 || this.#closed) return
    const attempt = Math.min(...missing.map((id) => this.#waiting.get(id)!.attempts))
    for (const id of missing) this.#waiting.get(id)!.attempts++
    const delayMs = backoffDelay(attempt, 500, 8000) + 250
    const unasked = missing.filter((id) => !this.#waiting.get(id)!.asked)
    if (unasked.length === 0) return this.#opts.readAgainIn(delayMs)
    for (const id of unasked) this.#waiting.get(id)!.asked = true
    this.#opts.logger.info(
      { minions: unasked.slice(0, 20), count: unasked.length, waitS: this.#opts.mineWaitMs / 1000 },
      'new minions are not in the mine yet: asking them for mine.update, then reading the mine again',
    )
    // The mine is read again once the minions have answered (or failed to), not before.
    const update = this.#opts
      .mineUpdate(unasked)
      .then(
        () => undefined,
        (err: unknown) => {
          this.#opts.logger.warn(
            { err, minions: unasked.slice(0, 20) },
            'mine.update failed; reading the mine again anyway',
          )
        },
      )
      .then(() => {
        this.#updates.delete(update)
        if (!this.#closed) this.#opts.readAgainIn(delayMs)
      })
    this.#updates.add(update)
  }

  get busy(): boolean {
    return this.#updates.size > 0
  }

  /** Resolves once no mine.update is in flight. */
  async idle(): Promise<void> {
    while (this.#updates.size > 0) await Promise.all(this.#updates)
  }

  /** No more reads are asked for; a mine.update in flight is left to end on its own. */
  close(): void {
    this.#closed = true
  }
}
