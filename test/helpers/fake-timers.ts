// Injected timers and clock that move only when a test says so: nothing here sleeps.
import type { Timers } from '../../src/util/timers.js'

export class FakeTimers implements Timers {
  now = 0
  readonly #due = new Map<number, { at: number, fn: () => void }>()
  #next = 1

  readonly clock = (): number => this.now

  setTimeout = (fn: () => void, ms: number): NodeJS.Timeout => {
    const id = this.#next++
    this.#due.set(id, { at: this.now + Math.max(0, ms), fn })
    return { id, unref: () => undefined } as unknown as NodeJS.Timeout
  }

  clearTimeout = (timer: NodeJS.Timeout): void => {
    this.#due.delete((timer as unknown as { id: number }).id)
  }

  get pending(): number {
    return this.#due.size
  }

  /** Moves time forward in steps until `promise` settles (at most `maxMs`), and returns what it did. */
  async until<T>(promise: Promise<T>, stepMs = 250, maxMs = 600_000): Promise<T> {
    let settled = false
    void promise.then(() => { settled = true }, () => { settled = true })
    await settle()
    for (let waited = 0; !settled && waited < maxMs; waited += stepMs) await this.advance(stepMs)
    return await promise
  }

  /** Moves time forward, firing every timer that falls due on the way, in order, letting promises settle between. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms
    for (;;) {
      const next = [...this.#due.entries()].sort((a, b) => a[1].at - b[1].at)[0]
      if (next === undefined || next[1].at > end) break
      this.#due.delete(next[0])
      this.now = next[1].at
      next[1].fn()
      await settle()
    }
    this.now = end
    await settle()
  }
}

/** Lets every promise chain that can move on, move on. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => { setImmediate(resolve) })
}
