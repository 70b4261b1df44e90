// At most one run at a time; every request made while one runs is folded into a single follow-up,
// so a burst of a thousand requests costs two runs, not a thousand.
export class SingleFlight<T> {
  readonly #run: () => Promise<T>
  #running: Promise<T> | null = null
  #queued: Promise<T> | null = null

  constructor(run: () => Promise<T>) {
    this.#run = run
  }

  /** The run that will include everything requested up to this call: the one starting now, or the follow-up. */
  async request(): Promise<T> {
    if (this.#running === null) {
      this.#running = this.#run().finally(() => {
        this.#running = null
      })
      return await this.#running
    }
    this.#queued ??= this.#running
      .catch(() => undefined)
      .then(async () => {
        this.#queued = null
        return await this.request()
      })
    return await this.#queued
  }

  /** The follow-up if one is queued, else the run in flight, else null. */
  get pending(): Promise<T> | null {
    return this.#queued ?? this.#running
  }
}
