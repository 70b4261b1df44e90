// The state file's format (STATE_FILE): the durable ledger as versioned JSON. Pure; reading and
// writing the file is the caller's. A damaged file is refused, never guessed at: a guess could
// hand a reserved address to another machine.
import { errors } from '../errors.js'
import type { Ledger, Reservation } from './ledger.js'
import { byMinionId, reservationProblem } from './reservation.js'

interface StateFileV1 {
  version: 1
  reservations: Reservation[]
}

export function serializeLedger (ledger: Ledger): string {
  const state: StateFileV1 = { version: 1, reservations: [...ledger.values()] }
  return `${JSON.stringify(state, null, 1)}\n`
}

/** The ledger in `text`, read from `path` (named in errors). */
export function parseLedger (path: string, text: string): Ledger {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new errors.StateCorrupt(path, (err as Error).message)
  }
  const state = parsed as Partial<StateFileV1>
  if (state.version !== 1 || !Array.isArray(state.reservations)) {
    throw new errors.StateCorrupt(path, 'expected {"version": 1, "reservations": [...]}')
  }
  const entries: Reservation[] = []
  for (const entry of state.reservations) {
    const problem = reservationProblem(entry)
    if (problem !== null) throw new errors.StateCorrupt(path, `bad reservation ${JSON.stringify(entry)}: ${problem}`)
    entries.push(entry as Reservation)
  }
  // saltmasq writes them in order; a hand-edited file may not be, and the ledger relies on it.
  if (!entries.every((r, i) => i === 0 || entries[i - 1]!.minionId < r.minionId)) entries.sort((a, b) => byMinionId(a.minionId, b.minionId))
  return new Map(entries.map((r) => [r.minionId, r]))
}
