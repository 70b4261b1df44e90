// The reservation ledger: which minion holds which IP. Pure (no I/O, the clock is passed in).
// Its rules are the project's promises:
// - a reservation, once made, keeps its IP until its minion is destroyed, whatever the mine says;
// - a minion missing from the mine keeps its reservation and is marked stale;
// - new reservations take the minion's first address inside the managed subnets;
// - an IP, a MAC or a host name is never held twice: the older reservation wins and the
//   newcomer is reported as a conflict;
// - a reservation goes on its minion's destroyed event, or once the master has had no key for
//   the minion for keyGoneAfterMs (salt-cloud's destroy deletes the key: this finds machines
//   whose destroyed event was lost). A minion only missing from the mine keeps it.
import { byMinionId, type Conflict, type Removal, type Reservation, type Skipped } from './reservation.js'
import { hostNameKey, hostNameProblem, type Subnets } from './validate.js'

export type { Conflict, Removal, Reservation, Skipped }

/** Reservations by minion id, in minion-id order. */
export type Ledger = ReadonlyMap<string, Reservation>

/** One address a minion reports in the mine (with its interface's MAC when the mine knows it). */
export interface MineAddress {
  ip: string
  mac?: string
}

/** What the mine says of each minion: the ledger's view of it, whatever mine function fed it. */
export type MineSnapshot = ReadonlyMap<string, { addresses: MineAddress[] }>

export interface LedgerInput {
  mine: MineSnapshot
  /** Minions destroyed since the last update: their reservations go, and they are not re-added now. */
  destroyed: ReadonlySet<string>
  subnets: Subnets
  /** Reserve by MAC where the mine knows it (network.interfaces). */
  byMac: boolean
  /** Every minion id the master has a key for; null when unknown (not read, or refused). */
  keys: ReadonlySet<string> | null
  /**
   * When that key list was read (its request started); `now` when not given. A key counts as
   * gone from the first list read without it, and the reservation goes only on a list read at
   * least keyGoneAfterMs later: a list read before a key was made can start a clock, never end one.
   */
  keysReadAt?: Date
  /** How long a key must have been gone before the reservation goes; 0: never. */
  keyGoneAfterMs: number
  /** When a key was seen deleted or rejected (a salt/key event): its clock starts then. */
  keyGoneHints?: ReadonlyMap<string, Date>
  now: Date
}

export interface LedgerUpdate {
  ledger: Ledger
  added: Reservation[]
  removed: Removal[]
  /** Minion ids whose reservation was already there and stays. */
  unchanged: string[]
  stale: Reservation[]
  conflicts: Conflict[]
  skipped: Skipped[]
  /** The soonest a reservation whose key is gone will be released, in ms from `now`; null when none is waiting. */
  keyGoneDueInMs: number | null
}

class Holders {
  readonly ip = new Map<string, string>()
  readonly mac = new Map<string, string>()
  readonly name = new Map<string, string>()

  hold (r: Reservation): void {
    this.ip.set(r.ip, r.minionId)
    if (r.mac !== undefined) this.mac.set(r.mac, r.minionId)
    this.name.set(hostNameKey(r.minionId), r.minionId)
  }
}

export function emptyLedger (): Ledger {
  return new Map()
}

export function updateLedger (previous: Ledger, input: LedgerInput): LedgerUpdate {
  const now = input.now.toISOString()
  const nowMs = input.now.getTime()
  const next = new Map<string, Reservation>()
  const removed: Removal[] = []
  const unchanged: string[] = []
  const stale: Reservation[] = []
  const holders = new Holders()
  const { keys, keyGoneAfterMs } = input
  const readAtMs = input.keysReadAt?.getTime() ?? nowMs
  const readAt = input.keysReadAt?.toISOString() ?? now
  let keyGoneDueInMs: number | null = null

  for (const [id, reservation] of previous) {
    if (input.destroyed.has(id)) {
      removed.push({ ...reservation, reason: 'destroyed' })
      continue
    }
    let current: Reservation
    if (input.mine.has(id)) {
      const { staleSince: _dropped, ...rest } = reservation
      current = { ...rest, lastSeen: now }
    } else {
      current = { ...reservation, staleSince: reservation.staleSince ?? now }
      stale.push(current)
    }
    if (keys !== null && keyGoneAfterMs > 0) {
      if (keys.has(id)) {
        if (current.keyGoneSince !== undefined) {
          const { keyGoneSince: _back, ...rest } = current
          current = rest
        }
      } else {
        const since = current.keyGoneSince ?? input.keyGoneHints?.get(id)?.toISOString() ?? readAt
        const due = Date.parse(since) + keyGoneAfterMs
        if (readAtMs >= due) {
          removed.push({ ...current, keyGoneSince: since, reason: 'key-gone' })
          continue
        }
        if (current.keyGoneSince !== since) current = { ...current, keyGoneSince: since }
        // The sync that can release it reads a fresh key list then (KeyWatch.readBefore).
        const dueInMs = Math.max(0, due - nowMs)
        keyGoneDueInMs = keyGoneDueInMs === null ? dueInMs : Math.min(keyGoneDueInMs, dueInMs)
      }
    }
    next.set(id, current)
    holders.hold(current)
    unchanged.push(id)
  }

  const added: Reservation[] = []
  const conflicts: Conflict[] = []
  const skipped: Skipped[] = []
  const gone = new Set(removed.map((r) => r.minionId))
  const newcomers = [...input.mine.keys()].filter((id) => !next.has(id) && !gone.has(id) && !input.destroyed.has(id)).sort(byMinionId)

  for (const minionId of newcomers) {
    const problem = hostNameProblem(minionId)
    if (problem !== null) {
      skipped.push({ minionId, reason: `not a valid dnsmasq host name: ${problem}` })
      continue
    }
    const nameHolder = holders.name.get(hostNameKey(minionId))
    if (nameHolder !== undefined) {
      conflicts.push({ minionId, reason: 'name-taken', heldBy: nameHolder })
      continue
    }
    const addresses = input.mine.get(minionId)?.addresses ?? []
    const candidates = addresses.filter((a) => input.subnets.contains(a.ip))
    if (candidates.length === 0) {
      const seen = addresses.map((a) => a.ip).join(', ') || 'none'
      skipped.push({ minionId, reason: `no address inside MANAGED_SUBNETS (mine has: ${seen})` })
      continue
    }
    const free = candidates.find((a) => !holders.ip.has(a.ip) && !(input.byMac && a.mac !== undefined && holders.mac.has(a.mac)))
    if (free === undefined) {
      const first = candidates[0]!
      const ipHolder = holders.ip.get(first.ip)
      conflicts.push(ipHolder !== undefined
        ? { minionId, reason: 'ip-taken', heldBy: ipHolder, ip: first.ip }
        : { minionId, reason: 'mac-taken', heldBy: holders.mac.get(first.mac!)!, mac: first.mac! })
      continue
    }
    const reservation: Reservation = { minionId, ip: free.ip, firstSeen: now, lastSeen: now }
    if (input.byMac && free.mac !== undefined) reservation.mac = free.mac
    next.set(minionId, reservation)
    holders.hold(reservation)
    added.push(reservation)
  }

  // `previous` was sorted and deleting keeps order: only newcomers call for a sort.
  const ledger = added.length === 0 ? next : new Map([...next].sort(([a], [b]) => byMinionId(a, b)))
  return { ledger, added, removed, unchanged, stale, conflicts, skipped, keyGoneDueInMs }
}
