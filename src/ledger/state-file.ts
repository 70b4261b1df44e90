// The state file's format (STATE_FILE): the durable ledger as versioned JSON. Pure; reading and
// writing the file is the caller's. A damaged file is refused, never guessed at: a guess could
// hand a reserved address to another machine.
//
// Version 2 keeps when the mine was last read once (`seenAt`) instead of a lastSeen on every
// reservation, so the file changes only when a reservation does. Version 1 files are read.
import { errors } from '../errors.js'
import { Ledger, type Held } from './ledger.js'
import { byMinionId, reservationProblem } from './reservation.js'

interface StateFileV2 {
  version: 2
  seenAt: string | null
  reservations: Held[]
}

export function serializeLedger(ledger: Ledger): string {
  const state: StateFileV2 = { version: 2, seenAt: ledger.seenAt, reservations: [...ledger.values()] }
  return `${JSON.stringify(state, null, 1)}\n`
}

/** The ledger in `text`, read from `path` (named in errors), and the version of the file it came from. */
export function parseLedger(path: string, text: string): { ledger: Ledger, version: 1 | 2 } {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new errors.SALTMASQ_STATE_CORRUPT(path, (err as Error).message)
  }
  const state = parsed as { version?: unknown, seenAt?: unknown, reservations?: unknown }
  if ((state.version !== 1 && state.version !== 2) || !Array.isArray(state.reservations)) {
    throw new errors.SALTMASQ_STATE_CORRUPT(path, 'expected {"version": 2, "seenAt": ..., "reservations": [...]}')
  }
  if (state.version === 2 && state.seenAt !== null && typeof state.seenAt !== 'string') throw new errors.SALTMASQ_STATE_CORRUPT(path, 'seenAt must be a string or null')
  const v1 = state.version === 1
  const entries: Held[] = []
  for (const entry of state.reservations as unknown[]) {
    const problem = reservationProblem(entry, { lastSeen: v1 ? 'required' : 'optional' })
    if (problem !== null) throw new errors.SALTMASQ_STATE_CORRUPT(path, `bad reservation ${JSON.stringify(entry)}: ${problem}`)
    entries.push(entry as Held)
  }
  let seenAt = v1 ? null : state.seenAt as string | null
  if (v1) {
    // Version 1 stamped every reservation the mine had with the sync's time: the latest is when
    // the mine was last read, and those entries were seen then.
    for (const r of entries) if (r.staleSince === undefined && (seenAt === null || r.lastSeen! > seenAt)) seenAt = r.lastSeen!
    for (const [i, r] of entries.entries()) {
      if (r.staleSince !== undefined) continue
      const { lastSeen: _then, ...held } = r
      entries[i] = held
    }
  }
  // saltmasq writes them in order; a hand-edited file may not be, and the ledger relies on it.
  if (!entries.every((r, i) => i === 0 || entries[i - 1]!.minionId < r.minionId)) entries.sort((a, b) => byMinionId(a.minionId, b.minionId))
  return { ledger: new Ledger(new Map(entries.map((r) => [r.minionId, r])), seenAt), version: v1 ? 1 : 2 }
}
