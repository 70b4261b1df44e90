// What saltmasq did, in Prometheus terms (prom-client). Things that happen (syncs, salt-api
// calls, events) are counted as they happen, through the observers the app hands to the
// client, the intake and the scheduler; things that are (reservations, backlog, the stream's
// connection, an owed apply) are read when scraped. A registry of its own, not prom-client's
// global one: two apps in one process (the tests) must not share counters.
// Over 200 lines: one declaration per metric, on purpose in one place (docs/operations.md lists
// them from here).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { EventSource, IntakeOutcome } from '../events/intake.js'
import type { StreamState } from '../events/salt-event-stream.js'
import type { MinionStatus } from '../store/minion-records.js'
import type { Ledger } from '../ledger/ledger.js'
import type { SaltCall } from '../salt/client.js'
import type { SyncResult } from '../sync/result.js'

/** What the gauges read at scrape time. */
export interface Observed {
  ledger: () => Ledger
  lastResult: () => SyncResult | null
  backlog: () => number
  owedApplySince: () => number | null
  /** DNSMASQ_PUBLISH=salt: each dnsmasq minion (empty for local). */
  dnsmasqMinions: () => MinionStatus[]
  stream: (() => StreamState) | null
  /** What saltmasq made of events it could not act on (they are hints, counted where they end). */
  hints: () => { destroyUnconfirmed: number, createdWithoutKey: number, dropped: number, keyListsHeld: number }
}

/** Syncs take 0.1–2 s on a live master; a mine of 100k minions takes longer. */
const SYNC_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60]
const CALL_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

export class Metrics {
  readonly registry = new Registry()
  readonly #syncs: Counter<'outcome'>
  readonly #syncSeconds: Histogram<'outcome'>
  readonly #stageSeconds: Histogram<'stage'>
  readonly #calls: Counter<'client' | 'fun' | 'outcome'>
  readonly #callSeconds: Histogram<'client' | 'fun'>
  readonly #events: Counter<'source' | 'kind' | 'outcome'>
  readonly #applies: Counter
  readonly #releases: Counter<'outcome'>
  readonly #removed: Counter<'reason'>
  readonly #publishBytes: Counter
  #lastSuccess = 0
  /** Whether gauges may carry minion ids as labels (only when /metrics needs a token). */
  namesMinions = true

  constructor() {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry, prefix: 'saltmasq_' })
    this.#syncs = new Counter({
      name: 'saltmasq_syncs_total',
      help: 'Syncs by outcome: ok, or the error code of a failed one',
      labelNames: ['outcome'],
      registers,
    })
    this.#syncSeconds = new Histogram({
      name: 'saltmasq_sync_duration_seconds',
      help: 'Duration of a sync, mine read to dnsmasq applied',
      labelNames: ['outcome'],
      buckets: SYNC_BUCKETS,
      registers,
    })
    this.#stageSeconds = new Histogram({
      name: 'saltmasq_sync_stage_duration_seconds',
      help: 'Where a successful sync spent its time: mine, ledger, render, write, apply',
      labelNames: ['stage'],
      buckets: SYNC_BUCKETS,
      registers,
    })
    this.#calls = new Counter({
      name: 'saltmasq_salt_api_calls_total',
      help: 'salt-api round trips by client, function and outcome (ok or the error code)',
      labelNames: ['client', 'fun', 'outcome'],
      registers,
    })
    this.#callSeconds = new Histogram({
      name: 'saltmasq_salt_api_call_duration_seconds',
      help: 'salt-api round trip latency by client and function',
      labelNames: ['client', 'fun'],
      buckets: CALL_BUCKETS,
      registers,
    })
    this.#events = new Counter({
      name: 'saltmasq_events_total',
      help:
        'Events judged, by source (webhook, '
        + 'stream), kind (created, destroyed, key-gone, none) and outcome (accepted, refused, ignored, invalid)',
      labelNames: ['source', 'kind', 'outcome'],
      registers,
    })
    this.#applies = new Counter({
      name: 'saltmasq_dnsmasq_applies_total',
      help: 'Times dnsmasq was told to take new files in (reload or restart)',
      registers,
    })
    this.#releases = new Counter({
      name: 'saltmasq_lease_releases_total',
      help: 'DHCP leases released for removed reservations, by outcome (ok, failed)',
      labelNames: ['outcome'],
      registers,
    })
    this.#publishBytes = new Counter({
      name: 'saltmasq_publish_bytes_total',
      help:
        'DNSMASQ_PUBLISH=salt: bytes '
        + 'of saltmasq.publish arguments sent to salt-api (Salt publishes each call to the minions)',
      registers,
    })
    this.#removed = new Counter({
      name: 'saltmasq_reservations_removed_total',
      help: 'Reservations released, by reason (destroyed, key-gone)',
      labelNames: ['reason'],
      registers,
    })
  }

  /** The salt client's `onCall`. */
  readonly saltCall = (call: SaltCall): void => {
    this.#calls.inc({ client: call.client, fun: call.fun, outcome: call.outcome })
    this.#callSeconds.observe({ client: call.client, fun: call.fun }, call.seconds)
  }

  /** The intake's observer. */
  readonly event = (source: EventSource, outcome: IntakeOutcome): void => {
    this.#events.inc({ source, kind: outcome.outcome === 'accepted' ? outcome.kind : 'none', outcome: outcome.outcome })
  }

  /** The scheduler's `onSync`. */
  readonly syncSucceeded = (result: SyncResult): void => {
    this.#lastSuccess = Date.parse(result.startedAt) + result.durationMs
    this.#syncs.inc({ outcome: 'ok' })
    this.#syncSeconds.observe({ outcome: 'ok' }, result.durationMs / 1000)
    for (const [stage, ms] of Object.entries(result.stagesMs)) this.#stageSeconds.observe({ stage }, ms / 1000)
    if (result.applied) this.#applies.inc()
    if (result.released.length > 0) this.#releases.inc({ outcome: 'ok' }, result.released.length)
    if (result.releaseFailures.length > 0) this.#releases.inc({ outcome: 'failed' }, result.releaseFailures.length)
    for (const r of result.removed) this.#removed.inc({ reason: r.reason })
    if (result.bytesSent > 0) this.#publishBytes.inc(result.bytesSent)
  }

  /** The scheduler's `onSyncFailed`. */
  readonly syncFailed = (err: Error, durationMs: number): void => {
    const outcome = (err as { code?: string }).code ?? 'error'
    this.#syncs.inc({ outcome })
    this.#syncSeconds.observe({ outcome }, durationMs / 1000)
  }

  /** The gauges, read at scrape time from what saltmasq already holds. */
  observe(o: Observed): void {
    const registers = [this.registry]
    const lastSuccess = (): number => this.#lastSuccess
    new Gauge({
      name: 'saltmasq_reservations',
      help: 'Reservations held, by state: active, or stale (the minion left the mine; the reservation is kept)',
      labelNames: ['state'],
      registers,
      collect() {
        let stale = 0
        const ledger = o.ledger()
        for (const r of ledger.values()) if (r.staleSince !== undefined) stale++
        this.set({ state: 'active' }, ledger.size - stale)
        this.set({ state: 'stale' }, stale)
      },
    })
    new Gauge({
      name: 'saltmasq_last_sync_problems',
      help:
        'What the last successful sync could not reserve: conflicts (IP, MAC or name taken) and skipped '
        + 'minions (no usable address or name)',
      labelNames: ['kind'],
      registers,
      collect() {
        const r = o.lastResult()
        this.set({ kind: 'conflict' }, r?.conflicts.length ?? 0)
        this.set({ kind: 'skipped' }, r?.skipped.length ?? 0)
      },
    })
    new Gauge({
      name: 'saltmasq_sync_backlog',
      help: 'Events waiting for a sync',
      registers,
      collect() {
        this.set(o.backlog())
      },
    })
    new Gauge({
      name: 'saltmasq_last_successful_sync_timestamp_seconds',
      help: 'When the last successful sync ended (0: none yet)',
      registers,
      collect() {
        this.set(lastSuccess() / 1000)
      },
    })
    new Gauge({
      name: 'saltmasq_dnsmasq_apply_owed_since_timestamp_seconds',
      help: 'Since when dnsmasq is owed an apply (files written, not yet taken in); 0 when nothing is owed',
      registers,
      collect() {
        this.set((o.owedApplySince() ?? 0) / 1000)
      },
    })
    const namesMinions = (): boolean => this.namesMinions
    new Gauge({
      name: 'saltmasq_dnsmasq_minion_behind_since_timestamp_seconds',
      help:
        'DNSMASQ_PUBLISH=salt: per dnsmasq minion (with METRICS_TOKEN; without it, minion="" is the longest '
        + 'behind), since when it is behind (a publish it did not confirm); 0 while it holds the reservations',
      labelNames: ['minion'],
      registers,
      collect() {
        this.reset()
        const minions = o.dnsmasqMinions()
        if (namesMinions()) {
          for (const m of minions)
            this.set({ minion: m.minion }, m.behindSince === null ? 0 : Date.parse(m.behindSince) / 1000)
        } else if (minions.length > 0) {
          const behind = minions.map((m) => (m.behindSince === null ? Infinity : Date.parse(m.behindSince)))
          const oldest = Math.min(...behind)
          this.set({ minion: '' }, oldest === Infinity ? 0 : oldest / 1000)
        }
      },
    })
    mirroredCounter(
      'saltmasq_destroy_events_unconfirmed_total',
      'Destroyed events dropped because the key list still had the key accepted after DESTROY_CONFIRM_S',
      registers,
      () => o.hints().destroyUnconfirmed,
    )
    mirroredCounter(
      'saltmasq_created_events_without_key_total',
      'Created events naming a minion with no accepted key: nothing chased',
      registers,
      () => o.hints().createdWithoutKey,
    )
    mirroredCounter(
      'saltmasq_hints_dropped_total',
      'Created events dropped past their bound (a full sync ran instead)',
      registers,
      () => o.hints().dropped,
    )
    mirroredCounter(
      'saltmasq_key_lists_held_total',
      'Key list reads not acted on: empty, or taking many reservations at once, until a read a minute later agrees',
      registers,
      () => o.hints().keyListsHeld,
    )
    const stream = o.stream
    if (stream === null) return
    new Gauge({
      name: 'saltmasq_event_stream_connected',
      help: '1 while salt-api\'s GET /events is connected',
      registers,
      collect() {
        this.set(stream().connected ? 1 : 0)
      },
    })
    // The stream keeps these counts itself; mirrored at scrape time as counters.
    mirroredCounter(
      'saltmasq_event_stream_reconnects_total',
      'Connections to GET /events opened after the first',
      registers,
      () => stream().reconnects,
    )
    mirroredCounter(
      'saltmasq_event_stream_events_total',
      'Events read from the stream, of any tag',
      registers,
      () => stream().eventsSeen,
    )
    mirroredCounter(
      'saltmasq_event_stream_busy_resyncs_total',
      'Full syncs run because the bus was too busy to trust the stream',
      registers,
      () => stream().busyResyncs,
    )
    mirroredCounter(
      'saltmasq_event_stream_records_refused_total',
      'Stream records refused (tag line and JSON tag '
      + 'differ, control characters, several tag or data lines) or cut out for their size',
      registers,
      () => stream().recordsRefused,
    )
  }
}

/** A counter whose count is kept elsewhere and only grows. */
function mirroredCounter(name: string, help: string, registers: Registry[], read: () => number): void {
  let seen = 0
  new Counter({
    name,
    help,
    registers,
    collect() {
      const now = read()
      if (now > seen) this.inc(now - seen)
      seen = now
    },
  })
}
