// What saltmasq knows of each dnsmasq minion it publishes to through Salt (DNSMASQ_PUBLISH=salt):
// the hash of every file the minion last confirmed holding (deltas are made against it), and
// whether it is behind (a call it did not confirm) and owes dnsmasq an apply. Kept beside the
// state file and rewritten only when it changes; marked before a call that changes files, so a
// crash mid-call makes the next call tell dnsmasq again rather than leave files untaken.
import type { Static } from 'typebox'
import type { MinionStatusSchema } from '../http/schemas.js'
import { readIfExists, writeFileAtomic } from '../store/atomic-file.js'

export interface MinionRecord {
  /** sha256 of each file (by path) as the minion last confirmed it; null: it had no such file */
  files: Record<string, string | null>
  /** Files may have changed there without dnsmasq taking them in: the next call forces an apply. */
  applyOwed: boolean
  /** epoch ms of the first call it did not confirm since it was last current; null when current */
  behindSince: number | null
  reason: string | null
  /** epoch ms of its last confirmed call */
  confirmedAt: number | null
}


export type MinionStatus = Static<typeof MinionStatusSchema>

const iso = (ms: number | null): string | null => ms === null ? null : new Date(ms).toISOString()

export function minionStatus(minion: string, r: MinionRecord): MinionStatus {
  return { minion, state: r.behindSince === null ? 'current' : 'behind', behindSince: iso(r.behindSince), reason: r.reason, confirmedAt: iso(r.confirmedAt) }
}

function parsed(text: string | null): Map<string, MinionRecord> {
  const out = new Map<string, MinionRecord>()
  if (text === null) return out
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return out
  }
  if (typeof value !== 'object' || value === null) return out
  for (const [minion, raw] of Object.entries(value as Record<string, Partial<MinionRecord>>)) {
    if (typeof raw !== 'object' || raw === null) continue
    out.set(minion, {
      files: typeof raw.files === 'object' && raw.files !== null ? raw.files : {},
      applyOwed: raw.applyOwed !== false,
      behindSince: typeof raw.behindSince === 'number' ? raw.behindSince : null,
      reason: typeof raw.reason === 'string' ? raw.reason : null,
      confirmedAt: typeof raw.confirmedAt === 'number' ? raw.confirmedAt : null,
    })
  }
  return out
}

function serialized(records: ReadonlyMap<string, MinionRecord>): string {
  return JSON.stringify(Object.fromEntries([...records].sort(([a], [b]) => a < b ? -1 : 1)))
}

export class MinionRecords {
  readonly path: string
  #records: Map<string, MinionRecord>
  #saved: string

  private constructor(path: string, records: Map<string, MinionRecord>, saved: string) {
    this.path = path
    this.#records = records
    this.#saved = saved
  }

  /** An unreadable record is as good as none: every minion then gets whole files once. */
  static async open(path: string): Promise<MinionRecords> {
    const text = await readIfExists(path)
    const records = parsed(text)
    return new MinionRecords(path, records, serialized(records))
  }

  get all(): ReadonlyMap<string, MinionRecord> {
    return this.#records
  }

  get(minion: string): MinionRecord | undefined {
    return this.#records.get(minion)
  }

  set(minion: string, record: MinionRecord): void {
    this.#records.set(minion, record)
  }

  delete(minion: string): void {
    this.#records.delete(minion)
  }

  /** Durable before it returns; no write when nothing changed. */
  async save(): Promise<void> {
    const text = serialized(this.#records)
    if (text === this.#saved) return
    await writeFileAtomic(this.path, `${text}\n`)
    this.#saved = text
  }
}
