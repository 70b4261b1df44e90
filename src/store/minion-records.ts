// What saltmasq knows of each dnsmasq minion it publishes to through Salt (DNSMASQ_PUBLISH=salt):
// the hash of every file the minion last confirmed holding (deltas are made against it), and
// whether it is behind (a call it did not confirm) and owes dnsmasq an apply. Kept beside the
// state file and rewritten only when it changes; marked before a call that changes files, so a
// crash mid-call makes the next call tell dnsmasq again rather than leave files untaken.
// The file is `{"version": 1, "minions": {id: record}}`; a bare map (before 0.2) is read alike.
import { Type, type Static } from 'typebox'
import type { MinionStatusSchema } from '../http/schemas.js'
import { readIfExists, writeFileAtomic } from './atomic-file.js'
import { schemaProblem } from './json-file.js'
import { iso } from '../util/clock.js'

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()])

export const MinionRecordSchema = Type.Object({
  /** sha256 of each file (by path) as the minion last confirmed it; null: it had no such file */
  files: Type.Record(Type.String(), Nullable(Type.String())),
  /** Files may have changed there without dnsmasq taking them in: the next call forces an apply. */
  applyOwed: Type.Boolean(),
  /** epoch ms of the first call it did not confirm since it was last current; null when current */
  behindSince: Nullable(Type.Number()),
  reason: Nullable(Type.String()),
  /** epoch ms of its last confirmed call */
  confirmedAt: Nullable(Type.Number()),
})
export type MinionRecord = Static<typeof MinionRecordSchema>

export const MinionRecordsFile = Type.Object({
  version: Type.Literal(1),
  minions: Type.Record(Type.String(), MinionRecordSchema),
})

export type MinionStatus = Static<typeof MinionStatusSchema>

export function minionStatus(minion: string, r: MinionRecord): MinionStatus {
  return {
    minion,
    state: r.behindSince === null ? 'current' : 'behind',
    behindSince: iso(r.behindSince),
    reason: r.reason,
    confirmedAt: iso(r.confirmedAt),
  }
}

/** The records in `text`; a record that does not match is dropped (that minion gets whole files once). */
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
  const minions = (value as { version?: unknown }).version === 1 ? (value as { minions?: unknown }).minions : value
  if (typeof minions !== 'object' || minions === null) return out
  for (const [minion, raw] of Object.entries(minions)) {
    if (schemaProblem(MinionRecordSchema, raw) === null) out.set(minion, raw as MinionRecord)
  }
  return out
}

function serialized(records: ReadonlyMap<string, MinionRecord>): string {
  const minions = Object.fromEntries([...records].sort(([a], [b]) => (a < b ? -1 : 1)))
  return JSON.stringify({ version: 1, minions } satisfies Static<typeof MinionRecordsFile>)
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
