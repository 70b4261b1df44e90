// Whether saltmasq can do its job right now, answered from what it already knows, never by a
// call made while the probe waits: a readiness probe must answer at once even when salt-api
// hangs. salt-api is probed in the background (and every successful sync counts as contact).
import type { MinionStatus } from '../store/minion-records.js'
import { type Clock, iso } from '../util/clock.js'

export interface ReadinessSources {
  /** One salt-api round trip, no retries (it runs in the background). */
  probe: () => Promise<void>
  lastError: () => { error: Error, at: number } | null
  lastSuccessAt: () => number | null
  /** The apply dnsmasq is owed, if any; `paced` when it only waits for its turn. */
  owedApply: () => { since: number, paced: boolean } | null
  /** DNSMASQ_PUBLISH=salt: each dnsmasq minion (empty for local). */
  dnsmasqMinions: () => MinionStatus[]
  clock: Clock
  intervalMs: number
}

/** What readiness needs to know of an event stream (salt-api's GET /events). */
export interface StreamHealth {
  connected: boolean
  disconnectedSince: string | null
  lastError: string | null
}

/** A stream reconnecting after a master restart is not a reason to leave a load balancer. */
const STREAM_GRACE_MS = 10_000

export interface ReadinessReport {
  ready: boolean
  reason?: string
  /** The reason without error text or minion ids: what /ready says without the token. */
  brief?: string
  detail: {
    saltApi: { reachable: boolean | null, checkedAt: string | null, error?: string }
    lastSync: { ok: boolean, at: string, error?: string } | null
    owedApply: { since: string, paced: boolean } | null
    /** Present when the event stream is on. */
    eventStream?: StreamHealth
    /** DNSMASQ_PUBLISH=salt: each dnsmasq minion, current or behind (reported, not a reason to be unready). */
    dnsmasqMinions?: MinionStatus[]
  }
}

export class ReadinessMonitor {
  readonly #src: ReadinessSources
  #salt: { reachable: boolean, at: number, error?: string } | null = null
  #probing: Promise<void> | null = null
  #timer: NodeJS.Timeout | null = null
  #stream: (() => StreamHealth) | null = null

  constructor(sources: ReadinessSources) {
    this.#src = sources
  }

  /** Counts an event stream in: not ready while it has been disconnected longer than a moment. */
  watchStream(state: () => StreamHealth): void {
    this.#stream = state
  }

  /** Probes now, then every interval, in the background. */
  start(): void {
    if (this.#timer !== null) return
    void this.refresh()
    this.#timer = setInterval(() => {
      void this.refresh()
    }, this.#src.intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  /** Probes salt-api (joining a probe under way); resolves when it has answered or failed. */
  async refresh(): Promise<void> {
    this.#probing ??= this.#src
      .probe()
      .then(
        () => {
          this.#salt = { reachable: true, at: this.#src.clock() }
        },
        (err: Error) => {
          this.#salt = { reachable: false, at: this.#src.clock(), error: err.message }
        },
      )
      .finally(() => {
        this.#probing = null
      })
    await this.#probing
  }

  report(): ReadinessReport {
    const synced = this.#src.lastSuccessAt()
    const failed = this.#src.lastError()
    // A sync that worked after the last probe is newer news of salt-api than the probe.
    const salt =
      synced !== null && (this.#salt === null || synced > this.#salt.at) ? { reachable: true, at: synced } : this.#salt
    const owed = this.#src.owedApply()
    const detail: ReadinessReport['detail'] = {
      saltApi:
        salt === null
          ? { reachable: null, checkedAt: null }
          : {
              reachable: salt.reachable,
              checkedAt: iso(salt.at),
              ...(salt.error === undefined ? {} : { error: salt.error }),
            },
      lastSync:
        failed !== null
          ? { ok: false, at: iso(failed.at), error: failed.error.message }
          : synced === null
            ? null
            : { ok: true, at: iso(synced) },
      owedApply: owed === null ? null : { since: iso(owed.since), paced: owed.paced },
    }
    const stream = this.#stream?.()
    if (stream !== undefined) detail.eventStream = stream
    const minions = this.#src.dnsmasqMinions()
    if (minions.length > 0) detail.dnsmasqMinions = minions
    const streamDown =
      stream !== undefined
      && !stream.connected
      && stream.disconnectedSince !== null
      && this.#src.clock() - Date.parse(stream.disconnectedSince) > STREAM_GRACE_MS
    let reason: string | undefined
    let brief: string | undefined
    if (salt === null) [brief, reason] = ['salt-api has not been reached yet', 'salt-api has not been reached yet']
    else if (!salt.reachable) [brief, reason] = ['salt-api is unreachable', `salt-api: ${salt.error ?? 'unreachable'}`]
    else if (failed !== null) [brief, reason] = ['the last sync failed', `last sync failed: ${failed.error.message}`]
    else if (streamDown)
      [brief, reason] = [
        'the salt-api event stream is disconnected',
        `salt-api event stream disconnected since ${stream.disconnectedSince}: ${stream.lastError ?? 'reconnecting'}`,
      ]
    else if (owed !== null && !owed.paced && minions.length > 0)
      [brief, reason] = [
        'no dnsmasq minion holds the reservations',
        `no dnsmasq minion holds the reservations: ${minions.map(behindSince).join('; ')}`,
      ]
    else if (owed !== null && !owed.paced)
      [brief, reason] = [
        'dnsmasq has not taken in the reservations',
        `dnsmasq has not taken in the reservations written since ${iso(owed.since)}; the next sync applies them`,
      ]
    // Until one sync has worked, dnsmasq serves whatever the files held before saltmasq started.
    else if (synced === null) [brief, reason] = ['no sync has completed yet', 'no sync has completed yet']
    return reason === undefined ? { ready: true, detail } : { ready: false, reason, brief: brief!, detail }
  }
}

function behindSince(m: MinionStatus): string {
  return `${m.minion} behind since ${m.behindSince ?? '?'} (${m.reason ?? 'unknown'})`
}
