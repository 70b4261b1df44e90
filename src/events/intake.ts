// Where every event saltmasq hears is judged, whatever brought it (the reactor's webhook or
// salt-api's event stream): salt-cloud's created/destroyed and the master's key deletions go to
// the scheduler; anything else on the bus is none of saltmasq's business. The bus is untrusted:
// any minion can fire an event with any tag and bare data (a pretagged `events` load carries no
// `cmd` or `id`), so an event is only a hint that makes the scheduler read Salt's own state
// sooner: the accepted key list and the mine decide. A cloud event visibly relayed from a
// minion is still refused (unless it runs salt-cloud: CLOUD_EVENT_MINIONS), which saves a read.
import type { Logger } from 'pino'
import type { SyncResult } from '../sync/result.js'
import { parseCloudEventTag } from './cloud-event.js'

export type EventSource = 'webhook' | 'stream'

export type IntakeOutcome =
  | { outcome: 'accepted', kind: 'created' | 'destroyed' | 'key-gone', minionId: string }
  /** Not an event saltmasq acts on (a job return, a minion start, a key accepted...). */
  | { outcome: 'ignored' }
  /** A cloud or key event relayed from a minion. */
  | { outcome: 'refused', reason: string, minionId: string }
  /** A cloud event whose minion id could never be reserved. */
  | { outcome: 'invalid', minionId: string, reason: string }

export interface Scheduler {
  created: (minionId: string) => Promise<SyncResult | null> | null
  destroyed: (minionId: string) => Promise<SyncResult | null> | null
  keyGone: (minionId: string) => Promise<SyncResult> | null
}

export interface IntakeCounts {
  accepted: number
  refused: number
  ignored: number
  invalid: number
}

const KEY_TAG = 'salt/key'

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * The minion an event was relayed from, or null when the master fired it. A minion's
 * `event.send` reaches the master bus wrapped: `{"cmd": "_minion_event", "id": <minion>, "tag",
 * "data"}`; salt-cloud's and the master's own events carry their data bare.
 */
export function relayedFrom(data: unknown): string | null {
  if (typeof data === 'string') return data.includes('_minion_event') ? 'a minion' : null
  if (!isRecord(data)) return null
  const id = typeof data.id === 'string' ? data.id : 'a minion'
  if (data.cmd === '_minion_event') return id
  if (typeof data.id === 'string' && 'tag' in data && 'data' in data) return id
  return null
}

export class EventIntake {
  readonly #scheduler: Scheduler
  readonly #allowed: ReadonlySet<string>
  readonly #log: Logger
  readonly counts: Record<EventSource, IntakeCounts> = {
    webhook: { accepted: 0, refused: 0, ignored: 0, invalid: 0 },
    stream: { accepted: 0, refused: 0, ignored: 0, invalid: 0 },
  }

  readonly #observe: ((source: EventSource, outcome: IntakeOutcome) => void) | undefined

  /** `observe` hears every judged event (metrics). */
  constructor(
    scheduler: Scheduler,
    cloudEventMinions: ReadonlySet<string>,
    logger: Logger,
    observe?: (source: EventSource, outcome: IntakeOutcome) => void,
  ) {
    this.#scheduler = scheduler
    this.#allowed = cloudEventMinions
    this.#log = logger
    this.#observe = observe
  }

  /** Whether saltmasq could act on an event with this tag (cheap: checked before the data is parsed). */
  static wants(tag: string): boolean {
    return tag === KEY_TAG || tag.startsWith('salt/cloud/')
  }

  /**
   * Judges one event and, if it counts, hands it to the scheduler as a hint (not awaited: what
   * comes of it is the key list's and the mine's business).
   */
  take(source: EventSource, tag: string, data: unknown): IntakeOutcome {
    const outcome = this.#judge(tag, data)
    this.counts[source][outcome.outcome]++
    this.#observe?.(source, outcome)
    if (outcome.outcome === 'refused') {
      this.#log.warn(
        { source, tag: tag.slice(0, 300), from: outcome.minionId.slice(0, 300) },
        'refused a cloud or key event relayed from a minion: only the master\'s own count',
      )
    } else if (outcome.outcome === 'accepted') {
      const { kind, minionId } = outcome
      const run =
        kind === 'created'
          ? this.#scheduler.created(minionId)
          : kind === 'destroyed'
            ? this.#scheduler.destroyed(minionId)
            : this.#scheduler.keyGone(minionId)
      if (run !== null) {
        run.catch(() => undefined)
        // Only the tag's meaning and the minion id: an event's data may hold anything.
        this.#log.info({ source, event: kind, minionId }, 'event taken as a hint')
      }
    }
    return outcome
  }

  #judge(tag: string, data: unknown): IntakeOutcome {
    if (tag === KEY_TAG) {
      if (!isRecord(data) || (data.act !== 'delete' && data.act !== 'reject') || typeof data.id !== 'string')
        return { outcome: 'ignored' }
      const from = relayedFrom(data)
      if (from !== null)
        return { outcome: 'refused', reason: `a salt/key event relayed from minion ${from}`, minionId: from }
      return { outcome: 'accepted', kind: 'key-gone', minionId: data.id }
    }
    const parsed = parseCloudEventTag(tag)
    if ('problem' in parsed) {
      if (parsed.problem === 'bad-minion-id')
        return { outcome: 'invalid', minionId: parsed.minionId, reason: parsed.reason }
      return { outcome: 'ignored' }
    }
    const from = relayedFrom(data)
    if (from !== null && !this.#allowed.has(from)) {
      return {
        outcome: 'refused',
        reason:
          `the event came from minion ${from}, not from the master (list it in `
          + `CLOUD_EVENT_MINIONS if it runs salt-cloud)`,
        minionId: from,
      }
    }
    return { outcome: 'accepted', kind: parsed.event.kind, minionId: parsed.event.minionId }
  }
}
