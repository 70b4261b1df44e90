// salt-api's own event stream (GET /events, server-sent events) as a source of events beside the
// reactor's fire-and-forget webhook. rest_cherrypy has no event ids and no replay, so every
// (re)connect is followed by a full sync: whatever happened while the stream was down is found
// then. The whole bus comes through (job returns included): events are filtered by tag before
// their data is even parsed, and nothing saltmasq does not use is logged or kept.
// Over 250 lines: connection loop, busy-bus rule and record checks; issue #20 moves the stream's
// HTTP call into salt/ and leaves the record checks here.
import { createParser, type ParseError } from 'eventsource-parser'
import type { Logger } from 'pino'
import { Type, type Static } from 'typebox'
import type { Dispatcher } from 'undici'
import type { SaltClient } from '../salt/client.js'
import { backoffDelay, sleep } from '../util/backoff.js'
import type { Clock } from '../util/clock.js'
import { EventIntake } from './intake.js'
import { MAX_RECORD_CHARS, SseGuard } from './sse-guard.js'

export const StreamStateSchema = Type.Object({
  connected: Type.Boolean(),
  connectedSince: Type.Union([Type.String(), Type.Null()]),
  /** Connections opened after the first. */
  reconnects: Type.Integer(),
  lastEventAt: Type.Union([Type.String(), Type.Null()], { description: 'the last event of any kind on the bus' }),
  lastUsedEventAt: Type.Union([Type.String(), Type.Null()], { description: 'the last cloud or key event' }),
  eventsSeen: Type.Integer(),
  eventsUsed: Type.Integer(),
  lastError: Type.Union([Type.String(), Type.Null()]),
  disconnectedSince: Type.Union([Type.String(), Type.Null()]),
  busyResyncs: Type.Integer({ description: 'full syncs run because the bus was too busy for the stream to be trusted' }),
  recordsRefused: Type.Integer({ description: 'records refused (a cloud or key tag line that differs from its JSON tag, holds a control character, or comes with several tag or data lines) or cut out for their size (over 1 MiB, whatever their tag)' }),
})
export type StreamState = Static<typeof StreamStateSchema>

export interface EventStreamOptions {
  client: Pick<SaltClient, 'session' | 'forgetSession' | 'endpoint'>
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
 * Past this many events a second, the master may be dropping them on their way to salt-api: its
 * publisher discards a subscriber whose queue of 10,000 writes is full ("Publisher discarding
 * slow subscriber"), and salt-api resubscribes silently, the HTTP stream never ending (B6: a
 * real master flooded at ~1,350 events/s delivered a sixth of them, ~235 a second on average).
 * Nothing on the stream says an event was lost, so while the bus is this busy, and once after,
 * the caller runs full syncs (one mine read per BUSY_RESYNC_MS: little beside such a bus).
 */
const BUSY_EVENTS_PER_S = 100
/** C0 controls, DEL, and the mark the guard leaves for a CR. */
const CONTROL = /[\u0000-\u001f\u007f\ufffd]/
const BUSY_RESYNC_MS = 10_000

/** The longest wait between two tries to connect (logins have their own, longer pause). */
const MAX_RETRY_MS = 2000

class SessionRefused extends Error {
  constructor() {
    super('salt-api refused the session for GET /events (401); logging in again')
  }
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString()
}

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
    this.#ticker ??= setInterval(() => { this.#checkBusy() }, 1000)
    this.#ticker.unref()
  }

  /** Once a second: is the bus busy enough that the stream may have lost events? */
  #checkBusy(): void {
    const rate = this.#eventsSeen - this.#seenAtLastTick
    this.#seenAtLastTick = this.#eventsSeen
    const now = this.#opts.clock()
    if (rate >= BUSY_EVENTS_PER_S) {
      if (!this.#busy) this.#log.warn({ eventsPerSecond: rate }, 'the Salt event bus is very busy: salt-api may drop events, so full syncs run until it calms down')
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
        planned = err instanceof SessionRefused && !relogged
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
    const { origin, basePath } = client.endpoint
    const session = await client.session()
    const abort = new AbortController()
    this.#current = abort
    // The connection's connect timeout and headersTimeout bound the wait for salt-api's answer.
    const res = await this.#opts.dispatcher.request({
      origin,
      path: `${basePath}/events`,
      method: 'GET',
      // rest_cherrypy 3008 answers any query string with 400: the token goes in the header.
      headers: { 'x-auth-token': session.token, 'accept': 'text/event-stream' },
      signal: abort.signal,
      headersTimeout: this.#opts.timeoutMs,
      // A quiet bus sends nothing for hours: no body timeout; age and keepalive bound it.
      bodyTimeout: 0,
    })
    if (res.statusCode === 401) {
      await res.body.dump()
      client.forgetSession(session.token)
      throw new SessionRefused()
    }
    if (res.statusCode !== 200) {
      const text = (await res.body.text()).replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200)
      throw new Error(`salt-api answered GET /events with HTTP ${res.statusCode}: ${text}`)
    }

    this.#connections++
    this.#connectedSince = clock()
    this.#disconnectedSince = null
    this.#lastError = null
    this.#log.info({ reconnects: this.#connections - 1 }, 'salt-api event stream connected; running a full sync for whatever happened meanwhile')
    this.#opts.resync()

    // Renew the session before it expires (an expired stream only ends at the next event, which
    // may be hours away) and never trust one connection longer than maxAgeMs.
    let planned = false
    const closeInMs = Math.max(1000, Math.min(session.renewAt - clock(), this.#opts.maxAgeMs))
    const renew = setTimeout(() => { planned = true; abort.abort() }, closeInMs)
    renew.unref()
    const parser = this.#parser()
    const guard = new SseGuard()
    const sink = {
      feed: parser.feed,
      reset: () => {
        parser.reset()
        this.#recordsRefused++
      },
    }
    try {
      // A multi-byte character may be split between chunks: decode as a stream.
      const decoder = new TextDecoder()
      for await (const chunk of res.body) guard.push(decoder.decode(chunk as Uint8Array, { stream: true }), sink)
      throw new Error('salt-api closed the event stream')
    } catch (err) {
      if (planned || this.#stopped) return true
      throw err
    } finally {
      clearTimeout(renew)
      res.body.destroy()
    }
  }

  /** The SSE parser, and the tag lines of the record it is reading. */
  #parser(): { feed: (text: string) => void, reset: () => void } {
    // rest_cherrypy sends `tag: <tag>` before each `data:` line: not a standard SSE field, so
    // the parser reports it as unknown, which is where the tag is picked up before any JSON.
    let tag: string | null = null
    let tagLines = 0
    const parser = createParser({
      // A backstop: the guard already cuts out records over the bound.
      maxBufferSize: MAX_RECORD_CHARS * 2,
      onError: (err: ParseError) => {
        if (err.type === 'unknown-field' && err.field === 'tag') {
          tag = err.value ?? null
          tagLines++
        }
      },
      onEvent: (event) => {
        this.#eventsSeen++
        this.#lastEventAt = this.#opts.clock()
        const seenTag = tag
        const lines = tagLines
        tag = null
        tagLines = 0
        if (seenTag === null || !EventIntake.wants(seenTag)) return
        this.#use(seenTag, lines, event.data)
      },
    })
    return {
      feed: (text) => { parser.feed(text) },
      reset: () => {
        parser.reset()
        tag = null
        tagLines = 0
      },
    }
  }

  #refuse(tag: string, why: string): void {
    this.#recordsRefused++
    this.#log.warn({ tag: JSON.stringify(tag.slice(0, 200)), why }, 'event stream record refused: its bytes do not add up to one event')
  }

  #use(seenTag: string, tagLines: number, text: string): void {
    if (tagLines !== 1) return this.#refuse(seenTag, `${tagLines} tag lines in one record`)
    // Salt's JSON never holds a raw line end: a second data line was made by a tag's bytes.
    if (text.includes('\n')) return this.#refuse(seenTag, 'several data lines in one record')
    if (CONTROL.test(seenTag)) return this.#refuse(seenTag, 'a control character in the tag')
    let parsed: { tag?: unknown, data?: unknown }
    try {
      parsed = JSON.parse(text) as { tag?: unknown, data?: unknown }
    } catch {
      return
    }
    if (parsed.tag !== seenTag) return this.#refuse(seenTag, 'the tag line and the JSON tag differ')
    try {
      const taken = this.#opts.intake.take('stream', seenTag, parsed.data)
      if (taken.outcome === 'accepted') {
        this.#eventsUsed++
        this.#lastUsedEventAt = this.#opts.clock()
      }
    } catch (err) {
      this.#log.warn({ tag: seenTag, code: (err as { code?: string }).code }, 'event from the stream not taken')
    }
  }
}
