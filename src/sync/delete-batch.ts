// Operators' deletes (DELETE /reservations/<id>) wait for a short quiet before their sync, so a
// script deleting a hundred reservations costs one sync: each delete pushes the start back by
// DESTROY_QUIET_MS, never past DESTROY_QUIET_MAX_MS after the first.
import type { Clock } from '../util/clock.js'
import type { Timers } from '../util/timers.js'
import { DESTROY_QUIET_MAX_MS, DESTROY_QUIET_MS } from './destroy-claims.js'

interface Batch<T> {
  timer: NodeJS.Timeout | null
  firstAt: number
  start: () => void
  run: Promise<T>
}

export class DeleteBatch<T> {
  readonly #sync: () => Promise<T>
  readonly #clock: Clock
  readonly #timers: Timers
  #batch: Batch<T> | null = null

  constructor(sync: () => Promise<T>, clock: Clock, timers: Timers) {
    this.#sync = sync
    this.#clock = clock
    this.#timers = timers
  }

  /** The sync of the batch this call joins. */
  async join(): Promise<T> {
    const now = this.#clock()
    let batch = this.#batch
    if (batch === null) {
      let start = (): void => {}
      const run = new Promise<void>((resolve) => {
        start = resolve
      }).then(async () => await this.#sync())
      batch = { timer: null, firstAt: now, start, run }
      this.#batch = batch
    }
    if (batch.timer !== null) this.#timers.clearTimeout(batch.timer)
    const waitMs = Math.max(0, Math.min(DESTROY_QUIET_MS, batch.firstAt + DESTROY_QUIET_MAX_MS - now))
    batch.timer = this.#timers.setTimeout(() => {
      this.flush()
    }, waitMs)
    return await batch.run
  }

  /** Starts the waiting batch's sync now (on close: deletes already taken are carried out). */
  flush(): void {
    const batch = this.#batch
    if (batch === null) return
    if (batch.timer !== null) this.#timers.clearTimeout(batch.timer)
    this.#batch = null
    batch.start()
  }

  get pending(): Promise<T> | null {
    return this.#batch?.run ?? null
  }
}
