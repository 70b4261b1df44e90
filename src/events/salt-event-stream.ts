// salt-api's own event stream (GET /events, server-sent events) as a source of events beside the
// reactor's fire-and-forget webhook. rest_cherrypy has no event ids and no replay, so every
// (re)connect is followed by a full sync: whatever happened while the stream was down is found
// then. The whole bus comes through (job returns included): events are filtered by tag before
// their data is even parsed, and nothing saltmasq does not use is logged or kept.
// Over 200 lines: the connection loop, its state for /ready and the busy-bus rule share the counters.
import type { Logger } from 'pino'
import type { Static } from 'typebox'
import type { StreamStateSchema } from '../http/schemas.js'
import type { Dispatcher } from 'undici'
import type { SaltClient } from '../salt/client.js'
import { errors } from '../errors.js'
import { backoffDelay } from '../util/backoff.js'
import { sleep } from '../util/timers.js'
import { type Clock, iso } from '../util/clock.js'
import { EventIntake } from './intake.js'
import { checkRecord, RecordReader, type StreamRecord } from './stream-records.js'

export type StreamState = Static<typeof StreamStateSchema>

export interface EventStreamOptions {
  client: Pick<SaltClient, 'session' | 'forgetSession' | 'transport'>
  /** A connection of its own for the long-lived stream (TCP keepalive on). */
  dispatcher: Dispatcher
  intake: EventIntake
  /** Called on every (re)connect, and while the bus is too busy to trust: the caller runs a full sync. */
  resync: () => void
  /** The longest a connection is trusted (there is no heartbeat to tell a dead one). */
  maxAgeMs: number
  /** Deadline for salt-api's answer to GET /events. */
  timeoutMs: number
  clock: Clock
  logger: Logger
}

/**
 * Past this many events a second the master's publisher may drop events on their way to salt-api,
 * silently (docs/events.md): the caller then runs a full sync every BUSY_RESYNC_MS instead of trusting the stream.
 */
const BUSY_EVENTS_PER_S = 100
const BUSY_RESYNC_MS = 10_000

/** The longest wait between two tries to connect (logins have their own, longer pause). */
const MAX_RETRY_MS = 2000

export class SaltEventStream {
  readonly #opts: EventStreamOptions
  readonly #log: Logger
  #stopped = false
  #loop: Promise<void> | null = null
  #current: AbortController | null = null
  #connectedSince: number | null = null
  #disconnectedSince: number | null
  #connections = 0
  #lastEventAt: number | null = null
  #lastUsedEventAt: number | null = null
  #eventsSeen = 0
  #eventsUsed = 0
  #lastError: string | null = null
  #busyResyncs = 0
  #recordsRefused = 0
  #busy = false
  #lastBusyResync = -Infinity
  #seenAtLastTick = 0
  #ticker: NodeJS.Timeout | null = null

  constructor(opts: EventStreamOptions) {
    this.#opts = opts
    this.#log = opts.logger
    this.#disconnectedSince = opts.clock()
  }

  start(): void {
    this.#loop ??= this.#run()
    this.#ticker ??= setInterval(() => {
      this.#checkBusy()
    }, 1000)
    this.#ticker.unref()
  }

  /** Once a second: is the bus busy enough that the stream may have lost events? */
  #checkBusy(): void {
    const rate = this.#eventsSeen - this.#seenAtLastTick
    this.#seenAtLastTick = this.#eventsSeen
    const now = this.#opts.clock()
    if (rate >= BUSY_EVENTS_PER_S) {
      if (!this.#busy)
        this.#log.warn(
          { eventsPerSecond: rate },
          'the Salt event bus is very busy: salt-api may drop events, so full syncs run until it calms down',
        )
      this.#busy = true
      if (now - this.#lastBusyResync >= BUSY_RESYNC_MS) this.#busyResync(now)
    } else if (this.#busy) {
      this.#busy = false
      this.#busyResync(now)
    }
  }

  #busyResync(now: number): void {
    this.#lastBusyResync = now
    this.#busyResyncs++
    this.#opts.resync()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#ticker !== null) clearInterval(this.#ticker)
    this.#current?.abort()
    await this.#loop
    await this.#opts.dispatcher.close()
  }

  get state(): StreamState {
    return {
      connected: this.#connectedSince !== null,
      connectedSince: iso(this.#connectedSince),
      reconnects: Math.max(0, this.#connections - 1),
      lastEventAt: iso(this.#lastEventAt),
      lastUsedEventAt: iso(this.#lastUsedEventAt),
      eventsSeen: this.#eventsSeen,
      eventsUsed: this.#eventsUsed,
      lastError: this.#lastError,
      disconnectedSince: iso(this.#disconnectedSince),
      busyResyncs: this.#busyResyncs,
      recordsRefused: this.#recordsRefused,
    }
  }

  async #run(): Promise<void> {
    let failures = 0
    let relogged = false
    while (!this.#stopped) {
      let planned = false
      try {
        planned = await this.#connectOnce()
        failures = 0
        relogged = false
      } catch (err) {
        if (this.#stopped) break
        this.#lastError = (err as Error).message
        // A connection that had been up starts the backoff afresh.
        failures = this.#connectedSince === null ? failures + 1 : 0
        // salt-api forgot the session (it restarted): log in again at once, once.
        planned = (err as { code?: string }).code === 'SALTMASQ_SALT_SESSION_REFUSED' && !relogged
        relogged = planned
      }
      if (this.#connectedSince !== null) {
        this.#connectedSince = null
        this.#disconnectedSince = this.#opts.clock()
      }
      if (this.#stopped) break
      // A planned reconnect (token renewal, connection age, a forgotten session) goes at once;
      // a failure backs off, briefly: a refused connection costs salt-api nothing, and /ready
      // waits on the stream once salt-api is back.
      if (!planned) {
        const delay = backoffDelay(failures, 250, MAX_RETRY_MS) + 100
        this.#log.warn({ err: this.#lastError, retryMs: delay }, 'salt-api event stream ended; reconnecting')
        await sleep(delay)
      }
    }
  }

  /** One connection, read until it ends. True when it was closed on purpose (renewal, age). */
  async #connectOnce(): Promise<boolean> {
    const { client, clock } = this.#opts
    const session = await client.session()
    const abort = new AbortController()
    this.#current = abort
    let body
    try {
      body = await client.transport.openEvents(this.#opts.dispatcher, session.value, abort.signal)
    } catch (err) {
      if ((err as { code?: string }).code === 'SALTMASQ_SALT_SESSION_REFUSED') client.forgetSession(session.value)
      throw err
    }

    this.#connections++
    this.#connectedSince = clock()
    this.#disconnectedSince = null
    this.#lastError = null
    this.#log.info(
      { reconnects: this.#connections - 1 },
      'salt-api event stream connected; running a full sync for whatever happened meanwhile',
    )
    this.#opts.resync()

    // Renew the session before it expires (an expired stream only ends at the next event, which
    // may be hours away) and never trust one connection longer than maxAgeMs.
    let planned = false
    const closeInMs = Math.max(1000, Math.min(session.renewAt - clock(), this.#opts.maxAgeMs))
    const renew = setTimeout(() => {
      planned = true
      abort.abort()
    }, closeInMs)
    renew.unref()
    const reader = new RecordReader(
      (record) => {
        this.#record(record)
      },
      () => {
        this.#recordsRefused++
      },
    )
    try {
      for await (const chunk of body) reader.push(chunk as Uint8Array)
      throw new errors.SALTMASQ_SALT_STREAM_ENDED()
    } catch (err) {
      if (planned || this.#stopped) return true
      throw err
    } finally {
      clearTimeout(renew)
      body.destroy()
    }
  }

  #refuse(tag: string, why: string): void {
    this.#recordsRefused++
    this.#log.warn(
      { tag: JSON.stringify(tag.slice(0, 200)), why },
      'event stream record refused: its bytes do not add up to one event',
    )
  }

  #record({ tag, tagLines, data }: StreamRecord): void {
    this.#eventsSeen++
    this.#lastEventAt = this.#opts.clock()
    if (tag === null || !EventIntake.wants(tag)) return
    const checked = checkRecord(tag, tagLines, data)
    if ('why' in checked) {
      if (checked.why !== null) this.#refuse(tag, checked.why)
      return
    }
    try {
      const taken = this.#opts.intake.take('stream', tag, checked.data)
      if (taken.outcome === 'accepted') {
        this.#eventsUsed++
        this.#lastUsedEventAt = this.#opts.clock()
      }
    } catch (err) {
      this.#log.warn({ tag, code: (err as { code?: string }).code }, 'event from the stream not taken')
    }
  }
}
