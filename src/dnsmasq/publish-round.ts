// One publish through Salt, minion by minion: how each answered saltmasq.publish, and what that
// makes of its record (current, behind, or to be called again with whole files or a forced apply).
import { localFailure } from '../salt/local-call.js'
import type { MinionRecord, MinionRecords } from '../store/minion-records.js'
import type { FileHashes } from './publish-payload.js'

/** How one minion answered saltmasq.publish. */
export type Answer =
  | { kind: 'ok', applied: boolean, changed: string[] }
  | { kind: 'stale' }
  | { kind: 'failed', reason: string, files: FileHashes }

interface Reply {
  result?: unknown
  stale?: unknown
  applied?: unknown
  files?: Record<string, { status?: string, hash?: string | null }>
  comment?: unknown
}

/** A minion's answer, its files (keyed by role) put back under saltmasq's paths. */
export function answerOf(value: unknown, pathOf: (role: string) => string): Answer {
  const r = (typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {}) as Reply
  const files = Object.entries(r.files ?? {})
  if (r.result === true) {
    const changed = files.filter(([, f]) => f.status === 'written').map(([role]) => pathOf(role))
    return { kind: 'ok', applied: r.applied === true, changed }
  }
  if (r.stale === true) return { kind: 'stale' }
  const held: FileHashes = {}
  for (const [role, f] of files) {
    if (f.status !== 'stale' && f.status !== 'pending' && f.hash !== undefined) held[pathOf(role)] = f.hash
  }
  const reason = localFailure(value) ?? (typeof r.comment === 'string' ? r.comment : 'an answer saltmasq cannot read')
  return { kind: 'failed', reason, files: held }
}

export class PublishRound {
  readonly changed = new Set<string>()
  applied = false
  readonly #records: MinionRecords
  readonly #before: ReadonlyMap<string, MinionRecord>
  readonly #desired: FileHashes
  readonly #now: number

  constructor(records: MinionRecords, desired: FileHashes, now: number) {
    this.#records = records
    this.#before = new Map(records.all)
    this.#desired = desired
    this.#now = now
  }

  /** The minions known before this publish. */
  get known(): ReadonlyMap<string, MinionRecord> {
    return this.#before
  }

  owedBefore(minion: string): boolean {
    return this.#before.get(minion)?.applyOwed ?? false
  }

  behind(minion: string, reason: string, files: FileHashes = {}): void {
    const prior = this.#before.get(minion)
    this.#records.set(minion, {
      files: { ...(prior?.files ?? {}), ...files },
      applyOwed: true,
      behindSince: prior?.behindSince ?? this.#now,
      reason,
      confirmedAt: prior?.confirmedAt ?? null,
    })
  }

  current(minion: string): void {
    this.#records.set(minion, {
      files: this.#desired,
      applyOwed: false,
      behindSince: null,
      reason: null,
      confirmedAt: this.#now,
    })
  }

  /**
   * Records what each minion answered. Returns those to call again with whole files (their files
   * changed under the delta) and those that still owe dnsmasq an apply; `again` is the second call.
   */
  settle(answers: ReadonlyMap<string, Answer>, again: boolean): { whole: string[], force: string[] } {
    const out = { whole: [] as string[], force: [] as string[] }
    for (const [m, a] of answers) {
      if (a.kind === 'ok') {
        for (const path of a.changed) this.changed.add(path)
        this.applied ||= a.applied
        if (this.owedBefore(m) && !a.applied && !again) out.force.push(m)
        else this.current(m)
      } else if (a.kind === 'stale') {
        if (again) this.behind(m, 'its files changed again while they were being sent whole')
        else out.whole.push(m)
      } else {
        this.behind(m, a.reason, a.files)
      }
    }
    return out
  }
}
