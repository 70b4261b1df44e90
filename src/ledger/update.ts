// The ledger's rules, which are the project's promises. Pure: no I/O, the clock is passed in.
// - A reservation, once made, keeps its IP until its minion is destroyed, whatever the mine says;
//   a minion missing from the mine keeps it and is marked stale.
// - It goes when its destroyed event is confirmed by the key list (the caller passes only those
//   in `destroyed`), or once the master has had no accepted key for it for keyGoneAfterMs.
// - A newcomer takes its first reservable address inside the managed subnets (MAX_CANDIDATES
//   looked at); an IP, MAC or host name is never held twice: the older reservation wins and the
//   newcomer is reported as a conflict.
// Over 200 lines: the rules are one reading (review, then reserve); their helpers stay beside them.
import { Holders, holdersOf, shareHolders } from './holders.js'
import { asReservation, Ledger, type StoredReservation, type MineAddress, type MineSnapshot } from './ledger.js'
import { byMinionId, type Conflict, type Removal, type Reservation, type Skipped } from './reservation.js'
import { hostNameKey, hostNameProblem, type Subnets } from './validate.js'

export interface LedgerInput {
  mine: MineSnapshot
  /** false: `mine` is the last read's view, not a new read (the ledger's seenAt stays). Default true. */
  mineRead?: boolean
  /** Minions whose destroy the key list confirmed (or an operator deleted): they go, and are not re-added now. */
  destroyed: ReadonlySet<string>
  subnets: Subnets
  /** Reserve by MAC where the mine knows it (network.interfaces). */
  byMac: boolean
  /** Every minion id whose key the master has accepted; null when unknown (not read, or refused). */
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
  /** Minion ids whose reservation was there before and stays (marked stale, back, or as it was). */
  kept: string[]
  stale: Reservation[]
  /** Whether any reservation was added, removed or changed: what the state file must record. */
  changed: boolean
  conflicts: Conflict[]
  skipped: Skipped[]
  /** The soonest a reservation whose key is gone will be released, in ms from `now`; null when none waits. */
  keyGoneDueInMs: number | null
  /** Reservable addresses newcomers listed past MAX_CANDIDATES each: never considered. */
  ignoredAddresses: number
}

/**
 * Of a newcomer's reservable addresses, at most this many are considered: a host with hundreds
 * of container addresses outside the managed subnets is normal, dozens inside them is not.
 */
export const MAX_CANDIDATES = 32
/** Addresses named in a skip reason, at most (every sync logs it). */
const MAX_NAMED = 8

export function updateLedger(previous: Ledger, input: LedgerInput): LedgerUpdate {
  const now = input.now.toISOString()
  const existing = reviewReservations(previous, input)
  const newcomers: string[] = []
  for (const id of input.mine.keys()) if (!previous.has(id) && !input.destroyed.has(id)) newcomers.push(id)
  newcomers.sort(byMinionId)
  // A kept reservation never changes its IP, MAC or name, so when none went, the previous
  // ledger's index holds exactly the kept ones.
  const holders =
    newcomers.length === 0
      ? new Holders()
      : existing.removed.length === 0
        ? new Holders(holdersOf(previous))
        : Holders.of(existing.byId.values())
  const fresh = reserveNewcomers(newcomers, holders, input, now)
  // `previous` was sorted, and deleting and replacing keep order: newcomers (sorted) are merged in.
  const byId = fresh.held.length === 0 ? existing.byId : merged(existing.byId, fresh.held)
  const ledger = new Ledger(byId, input.mineRead === false ? previous.seenAt : now)
  if (fresh.held.length === 0 && existing.removed.length === 0) shareHolders(previous, ledger)
  return {
    ledger,
    added: fresh.added,
    removed: existing.removed,
    kept: existing.kept,
    stale: existing.stale,
    changed: existing.replaced > 0 || existing.removed.length > 0 || fresh.held.length > 0,
    conflicts: fresh.conflicts,
    skipped: fresh.skipped,
    keyGoneDueInMs: existing.keyGoneDueInMs,
    ignoredAddresses: fresh.ignoredAddresses,
  }
}

interface Reviewed {
  /** The reservations that stay, in minion-id order: the previous map itself when none changed. */
  byId: ReadonlyMap<string, StoredReservation>
  removed: Removal[]
  kept: string[]
  stale: Reservation[]
  replaced: number
  keyGoneDueInMs: number | null
}

/** Step 1: every existing reservation is released, kept as it is, or kept with a new mark. */
function reviewReservations(previous: Ledger, input: LedgerInput): Reviewed {
  const out: Reviewed = { byId: previous.byId, removed: [], kept: [], stale: [], replaced: 0, keyGoneDueInMs: null }
  // Copy on write: most syncs change no reservation, and their ledger shares the previous map.
  const replaced: StoredReservation[] = []
  for (const reservation of previous.values()) {
    const next = reviewOne(reservation, previous, input)
    if ('reason' in next) {
      out.removed.push(next)
      continue
    }
    if (next.held.staleSince !== undefined) out.stale.push(next.held as Reservation)
    if (next.held !== reservation) replaced.push(next.held)
    if (next.dueInMs !== null) out.keyGoneDueInMs = Math.min(out.keyGoneDueInMs ?? Infinity, next.dueInMs)
    out.kept.push(reservation.minionId)
  }
  if (replaced.length > 0 || out.removed.length > 0) {
    const copy = new Map(previous.byId)
    for (const r of out.removed) copy.delete(r.minionId)
    for (const r of replaced) copy.set(r.minionId, r)
    out.byId = copy
  }
  out.replaced = replaced.length
  return out
}

/** One reservation's fate: its removal, or what it becomes and when its key-gone clock is due. */
function reviewOne(
  reservation: StoredReservation,
  previous: Ledger,
  input: LedgerInput,
): Removal | { held: StoredReservation, dueInMs: number | null } {
  const now = input.now.toISOString()
  const id = reservation.minionId
  const shown = (held: StoredReservation): Reservation => asReservation(held, previous.seenAt)
  if (input.destroyed.has(id)) return { ...shown(reservation), reason: 'destroyed' }
  // Most syncs change nothing: the entry is kept as it is, not copied.
  let held = reservation
  if (input.mine.has(id)) {
    if (held.staleSince !== undefined) {
      const { staleSince: _back, lastSeen: _seenNow, ...rest } = held
      held = rest
    }
  } else if (held.staleSince === undefined) {
    held = { ...held, lastSeen: previous.seenAt ?? held.firstSeen, staleSince: now }
  }
  const { keys, keyGoneAfterMs } = input
  if (keys === null || keyGoneAfterMs <= 0) return { held, dueInMs: null }
  if (keys.has(id)) {
    if (held.keyGoneSince !== undefined) {
      const { keyGoneSince: _back, ...rest } = held
      held = rest
    }
    return { held, dueInMs: null }
  }
  const readAt = input.keysReadAt ?? input.now
  const since = held.keyGoneSince ?? input.keyGoneHints?.get(id)?.toISOString() ?? readAt.toISOString()
  const due = Date.parse(since) + keyGoneAfterMs
  if (readAt.getTime() >= due) return { ...shown(held), keyGoneSince: since, reason: 'key-gone' }
  if (held.keyGoneSince !== since) held = { ...held, keyGoneSince: since }
  // The sync that can release it reads a fresh key list then (KeyWatch.needsFresherList).
  return { held, dueInMs: Math.max(0, due - input.now.getTime()) }
}

interface Reserved {
  held: StoredReservation[]
  added: Reservation[]
  conflicts: Conflict[]
  skipped: Skipped[]
  ignoredAddresses: number
}

/** Step 2: each newcomer, in minion-id order, takes its first free reservable address, or is told why not. */
function reserveNewcomers(newcomers: readonly string[], holders: Holders, input: LedgerInput, now: string): Reserved {
  const out: Reserved = { held: [], added: [], conflicts: [], skipped: [], ignoredAddresses: 0 }
  for (const minionId of newcomers) {
    const problem = hostNameProblem(minionId)
    if (problem !== null) {
      out.skipped.push({ minionId, reason: `not a valid dnsmasq host name: ${problem}` })
      continue
    }
    const nameHolder = holders.name(hostNameKey(minionId))
    if (nameHolder !== undefined) {
      out.conflicts.push({ minionId, reason: 'name-taken', heldBy: nameHolder })
      continue
    }
    const addresses = input.mine.get(minionId)?.addresses ?? []
    const candidates = reservableCandidates(addresses, input.subnets)
    out.ignoredAddresses += candidates.ignored
    if (candidates.list.length === 0) {
      const reason = `no reservable address inside MANAGED_SUBNETS (mine has: ${addressSummary(addresses)})`
      out.skipped.push({ minionId, reason })
      continue
    }
    const taken = (a: MineAddress): boolean =>
      holders.ip(a.ip) !== undefined || (input.byMac && a.mac !== undefined && holders.mac(a.mac) !== undefined)
    const free = candidates.list.find((a) => !taken(a))
    if (free === undefined) {
      out.conflicts.push(conflictFor(minionId, candidates.list[0]!, holders))
      continue
    }
    const reservation: StoredReservation = { minionId, ip: free.ip, firstSeen: now }
    if (input.byMac && free.mac !== undefined) reservation.mac = free.mac
    out.held.push(reservation)
    holders.hold(reservation)
    out.added.push({ ...reservation, lastSeen: now })
  }
  return out
}

function reservableCandidates(
  addresses: readonly MineAddress[],
  subnets: Subnets,
): { list: MineAddress[], ignored: number } {
  const list: MineAddress[] = []
  let ignored = 0
  for (const a of addresses) {
    if (!subnets.reservable(a.ip)) continue
    if (list.length < MAX_CANDIDATES) list.push(a)
    else ignored++
  }
  return { list, ignored }
}

/** The conflict of a newcomer all of whose candidates are held: named by its first one. */
function conflictFor(minionId: string, first: MineAddress, holders: Holders): Conflict {
  const ipHolder = holders.ip(first.ip)
  return ipHolder !== undefined
    ? { minionId, reason: 'ip-taken', heldBy: ipHolder, ip: first.ip }
    : { minionId, reason: 'mac-taken', heldBy: holders.mac(first.mac!)!, mac: first.mac! }
}

function addressSummary(addresses: readonly MineAddress[]): string {
  if (addresses.length === 0) return 'none'
  const named = addresses
    .slice(0, MAX_NAMED)
    .map((a) => a.ip)
    .join(', ')
  return addresses.length > MAX_NAMED ? `${named} and ${addresses.length - MAX_NAMED} more` : named
}

/** `sorted` with `added` (in minion-id order too) merged in: one pass, no sort of the whole. */
function merged(
  sorted: ReadonlyMap<string, StoredReservation>,
  added: readonly StoredReservation[],
): Map<string, StoredReservation> {
  const out = new Map<string, StoredReservation>()
  let i = 0
  for (const r of sorted.values()) {
    for (; i < added.length && added[i]!.minionId < r.minionId; i++) out.set(added[i]!.minionId, added[i]!)
    out.set(r.minionId, r)
  }
  for (; i < added.length; i++) out.set(added[i]!.minionId, added[i]!)
  return out
}
