// STATE_FILE: the durable ledger as versioned JSON. A damaged file is refused, never guessed at:
// a guess could hand a reserved address to another machine. Version 2 keeps when the mine was
// last read once (`seenAt`) instead of a lastSeen on every reservation, so the file changes only
// when a reservation does; version 1 files are read and rewritten as version 2.
import { Type, type Static } from 'typebox'
import { errors } from '../errors.js'
import { Ledger, type StoredReservation } from '../ledger/ledger.js'
import { byMinionId, reservationProblem } from '../ledger/reservation.js'
import { parseJson, schemaProblem } from './json-file.js'

const Entries = Type.Array(Type.Object({ minionId: Type.String() }, { additionalProperties: true }))

export const LedgerFileV2 = Type.Object({
  version: Type.Literal(2),
  seenAt: Type.Union([Type.String(), Type.Null()]),
  reservations: Entries,
})

export const LedgerFileV1 = Type.Object({
  version: Type.Literal(1),
  reservations: Entries,
})

export function serializeLedger(ledger: Ledger): string {
  const state: Static<typeof LedgerFileV2> & { reservations: StoredReservation[] } = {
    version: 2,
    seenAt: ledger.seenAt,
    reservations: [...ledger.values()],
  }
  return `${JSON.stringify(state, null, 1)}\n`
}

/** The ledger in `text`, read from `path` (named in errors), and the version of the file it came from. */
export function parseLedger(path: string, text: string): { ledger: Ledger, version: 1 | 2 } {
  const state = parseJson(path, text)
  const version = (state as { version?: unknown } | null)?.version
  const problem = schemaProblem(version === 1 ? LedgerFileV1 : LedgerFileV2, state)
  if (problem !== null) {
    throw new errors.SALTMASQ_STATE_CORRUPT(
      path,
      `expected {"version": 2, "seenAt": ..., "reservations": [...]}: ${problem}`,
    )
  }
  const v1 = version === 1
  const entries: StoredReservation[] = []
  for (const entry of (state as { reservations: unknown[] }).reservations) {
    const bad = reservationProblem(entry, { lastSeen: v1 ? 'required' : 'optional' })
    if (bad !== null) throw new errors.SALTMASQ_STATE_CORRUPT(path, `bad reservation ${JSON.stringify(entry)}: ${bad}`)
    entries.push(entry as StoredReservation)
  }
  const seenAt = v1 ? fromVersion1(entries) : (state as Static<typeof LedgerFileV2>).seenAt
  // saltmasq writes them in order; a hand-edited file may not be, and the ledger relies on it.
  if (!entries.every((r, i) => i === 0 || entries[i - 1]!.minionId < r.minionId)) {
    entries.sort((a, b) => byMinionId(a.minionId, b.minionId))
  }
  return { ledger: new Ledger(new Map(entries.map((r) => [r.minionId, r])), seenAt), version: v1 ? 1 : 2 }
}

/**
 * Version 1 stamped every reservation the mine had with the sync's time: the latest is when the
 * mine was last read, and those entries were seen then (they lose their own lastSeen).
 */
function fromVersion1(entries: StoredReservation[]): string | null {
  let seenAt: string | null = null
  for (const r of entries)
    if (r.staleSince === undefined && (seenAt === null || r.lastSeen! > seenAt)) seenAt = r.lastSeen!
  for (const [i, r] of entries.entries()) {
    if (r.staleSince !== undefined) continue
    const { lastSeen: _then, ...held } = r
    entries[i] = held
  }
  return seenAt
}
