// The reservation ledger: which minion holds which IP. Pure (no I/O, the clock is passed in).
// Its rules are the project's promises:
// - a reservation, once made, keeps its IP until its minion is destroyed, whatever the mine says;
// - a minion missing from the mine keeps its reservation and is marked stale;
// - new reservations take the minion's first reservable address inside the managed subnets
//   (not a network, broadcast or excluded address; at most MAX_CANDIDATES of them looked at);
// - an IP, a MAC or a host name is never held twice: the older reservation wins and the
//   newcomer is reported as a conflict;
// - a reservation goes when its destroyed event is confirmed by the key list (the caller passes
//   only confirmed ones in `destroyed`), or once the master has had no accepted key for the
//   minion for keyGoneAfterMs (this finds machines whose event was lost). A minion only
//   missing from the mine keeps it.
// Over 250 lines: the rules, the Ledger map and the holders' index; issue #20 splits updateLedger
// into named steps and the index into its own module.
import { byMinionId, type Conflict, type Removal, type Reservation, type Skipped } from './reservation.js'
import { hostNameKey, hostNameProblem, type Subnets } from './validate.js'

export type { Conflict, Removal, Reservation, Skipped }

/**
 * A reservation as the ledger holds it. One the mine still has was seen by the ledger's last
 * sync (`Ledger.seenAt`) and has no lastSeen of its own, so a sync does not copy every
 * reservation to say so, and an entry changes only when the reservation does. A stale one keeps
 * when the mine last had it.
 */
export type Held = Omit<Reservation, 'lastSeen'> & { lastSeen?: string }

/**
 * Reservations by minion id, in minion-id order, and when the mine was last read. Immutable: a
 * sync that changes no reservation makes a ledger over the same map, so at 50,000 reservations
 * it neither copies nor rebuilds one.
 */
export class Ledger implements ReadonlyMap<string, Held> {
  readonly #byId: ReadonlyMap<string, Held>
  /** When the mine was last read: every reservation that is not stale was in it then. Null before the first read. */
  readonly seenAt: string | null

  /** `byId` in minion-id order; it is taken, not copied, and must not change afterwards. */
  constructor(byId: ReadonlyMap<string, Held>, seenAt: string | null) {
    this.#byId = byId
    this.seenAt = seenAt
  }

  get size(): number { return this.#byId.size }
  get(minionId: string): Held | undefined { return this.#byId.get(minionId) }
  has(minionId: string): boolean { return this.#byId.has(minionId) }
  keys(): MapIterator<string> { return this.#byId.keys() }
  values(): MapIterator<Held> { return this.#byId.values() }
  entries(): MapIterator<[string, Held]> { return this.#byId.entries() }
  [Symbol.iterator](): MapIterator<[string, Held]> { return this.#byId[Symbol.iterator]() }
  forEach(fn: (value: Held, key: string, map: ReadonlyMap<string, Held>) => void): void {
    for (const [key, value] of this.#byId) fn(value, key, this)
  }

  /** The map itself, for what is kept per map (the holders' index). */
  get byId(): ReadonlyMap<string, Held> { return this.#byId }
}

/** A held reservation as the API and the sync results show it. */
function asReservation(held: Held, seenAt: string | null): Reservation {
  return held.lastSeen !== undefined ? held as Reservation : { ...held, lastSeen: seenAt ?? held.firstSeen }
}

/** Every reservation, as asReservation shows it. */
export function listReservations(ledger: Ledger): Reservation[] {
  const out: Reservation[] = []
  for (const held of ledger.values()) out.push(asReservation(held, ledger.seenAt))
  return out
}

/** One address a minion reports in the mine (with its interface's MAC when the mine knows it). */
export interface MineAddress {
  ip: string
  mac?: string
}

/** What the mine says of each minion: the ledger's view of it, whatever mine function fed it. */
export type MineSnapshot = ReadonlyMap<string, { addresses: MineAddress[] }>

export interface LedgerInput {
  mine: MineSnapshot
  /** false: `mine` is the last read's view, not a new read (the ledger's seenAt stays). Default true. */
  mineRead?: boolean
  /** Minions whose destroy the key list confirmed (or an operator deleted): their reservations go, and they are not re-added now. */
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
  /** Minion ids whose reservation was already there and stays. */
  unchanged: string[]
  stale: Reservation[]
  /** Whether any reservation was added, removed or changed (stale, back, key gone or back): what the state file must record. The time the mine was read alone is not. */
  changed: boolean
  conflicts: Conflict[]
  skipped: Skipped[]
  /** The soonest a reservation whose key is gone will be released, in ms from `now`; null when none is waiting. */
  keyGoneDueInMs: number | null
  /** Reservable addresses newcomers listed past MAX_CANDIDATES each: never considered. */
  ignoredAddresses: number
}

/**
 * Of a newcomer's reservable addresses, at most this many are considered: a minion says what
 * its mine holds, and a host with hundreds of container addresses outside the managed subnets
 * is normal, but no honest one has dozens inside them.
 */
export const MAX_CANDIDATES = 32
/** Addresses named in a skip reason, at most (every sync logs it). */
const MAX_NAMED = 8

function addressSummary(addresses: readonly MineAddress[]): string {
  if (addresses.length === 0) return 'none'
  const named = addresses.slice(0, MAX_NAMED).map((a) => a.ip).join(', ')
  return addresses.length > MAX_NAMED ? `${named} and ${addresses.length - MAX_NAMED} more` : named
}

/**
 * Who holds each IP, MAC and host name. Built only for a sync with newcomers, and kept per
 * ledger: a fleet with a standing conflict has "newcomers" every sync, and the next ledger,
 * when no reservation came or went, reads through to the same index instead of building its own.
 */
class Holders {
  readonly #ip = new Map<string, string>()
  readonly #mac = new Map<string, string>()
  readonly #name = new Map<string, string>()
  readonly #parent: Holders | undefined

  constructor(parent?: Holders) {
    this.#parent = parent
  }

  static of(held: Iterable<Held>): Holders {
    const holders = new Holders()
    for (const r of held) holders.hold(r)
    return holders
  }

  hold(r: Held): void {
    this.#ip.set(r.ip, r.minionId)
    if (r.mac !== undefined) this.#mac.set(r.mac, r.minionId)
    this.#name.set(hostNameKey(r.minionId), r.minionId)
  }

  ip(ip: string): string | undefined {
    return this.#ip.get(ip) ?? this.#parent?.ip(ip)
  }

  mac(mac: string): string | undefined {
    return this.#mac.get(mac) ?? this.#parent?.mac(mac)
  }

  name(key: string): string | undefined {
    return this.#name.get(key) ?? this.#parent?.name(key)
  }
}

/** Per reservations map: ledgers that share a map share its index. */
const indexes = new WeakMap<ReadonlyMap<string, Held>, Holders>()

function holdersOf(ledger: Ledger): Holders {
  let holders = indexes.get(ledger.byId)
  if (holders === undefined) indexes.set(ledger.byId, holders = Holders.of(ledger.values()))
  return holders
}

/** `sorted` with `added` (in minion-id order too) merged in: one pass, no sort of the whole. */
function merged(sorted: ReadonlyMap<string, Held>, added: readonly Held[]): Map<string, Held> {
  const out = new Map<string, Held>()
  let i = 0
  for (const r of sorted.values()) {
    for (; i < added.length && added[i]!.minionId < r.minionId; i++) out.set(added[i]!.minionId, added[i]!)
    out.set(r.minionId, r)
  }
  for (; i < added.length; i++) out.set(added[i]!.minionId, added[i]!)
  return out
}

export function emptyLedger(): Ledger {
  return new Ledger(new Map(), null)
}

export function updateLedger(previous: Ledger, input: LedgerInput): LedgerUpdate {
  const now = input.now.toISOString()
  const nowMs = input.now.getTime()
  // Copy on write: most syncs change no reservation, and their ledger shares the previous map.
  const replaced: Held[] = []
  const removed: Removal[] = []
  const unchanged: string[] = []
  const stale: Reservation[] = []
  const { keys, keyGoneAfterMs } = input
  const readAtMs = input.keysReadAt?.getTime() ?? nowMs
  const readAt = input.keysReadAt?.toISOString() ?? now
  let keyGoneDueInMs: number | null = null
  const shown = (held: Held): Reservation => asReservation(held, previous.seenAt)

  for (const reservation of previous.values()) {
    const id = reservation.minionId
    if (input.destroyed.has(id)) {
      removed.push({ ...shown(reservation), reason: 'destroyed' })
      continue
    }
    // Most syncs change nothing: the entry is kept as it is, not copied.
    let current: Held = reservation
    if (input.mine.has(id)) {
      if (reservation.staleSince !== undefined) {
        const { staleSince: _back, lastSeen: _seenNow, ...rest } = reservation
        current = rest
      }
    } else if (reservation.staleSince === undefined) {
      current = { ...reservation, lastSeen: previous.seenAt ?? reservation.firstSeen, staleSince: now }
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
          removed.push({ ...shown(current), keyGoneSince: since, reason: 'key-gone' })
          continue
        }
        if (current.keyGoneSince !== since) current = { ...current, keyGoneSince: since }
        // The sync that can release it reads a fresh key list then (KeyWatch.readBefore).
        const dueInMs = Math.max(0, due - nowMs)
        keyGoneDueInMs = keyGoneDueInMs === null ? dueInMs : Math.min(keyGoneDueInMs, dueInMs)
      }
    }
    if (current.staleSince !== undefined) stale.push(current as Reservation)
    if (current !== reservation) replaced.push(current)
    unchanged.push(id)
  }
  let kept = previous.byId
  if (replaced.length > 0 || removed.length > 0) {
    const copy = new Map(previous.byId)
    for (const r of removed) copy.delete(r.minionId)
    for (const r of replaced) copy.set(r.minionId, r)
    kept = copy
  }

  const added: Reservation[] = []
  const conflicts: Conflict[] = []
  const skipped: Skipped[] = []
  const newcomers: string[] = []
  for (const id of input.mine.keys()) if (!previous.has(id) && !input.destroyed.has(id)) newcomers.push(id)
  newcomers.sort(byMinionId)
  // What newcomers must not take. A kept reservation never changes its IP, MAC or name, so when
  // none went, the previous ledger's index holds exactly the kept ones.
  const holders = newcomers.length === 0 ? new Holders() : removed.length === 0 ? new Holders(holdersOf(previous)) : Holders.of(kept.values())
  const fresh: Held[] = []
  let ignoredAddresses = 0

  for (const minionId of newcomers) {
    const problem = hostNameProblem(minionId)
    if (problem !== null) {
      skipped.push({ minionId, reason: `not a valid dnsmasq host name: ${problem}` })
      continue
    }
    const nameHolder = holders.name(hostNameKey(minionId))
    if (nameHolder !== undefined) {
      conflicts.push({ minionId, reason: 'name-taken', heldBy: nameHolder })
      continue
    }
    const addresses = input.mine.get(minionId)?.addresses ?? []
    const candidates: MineAddress[] = []
    for (const a of addresses) {
      if (!input.subnets.reservable(a.ip)) continue
      if (candidates.length < MAX_CANDIDATES) candidates.push(a)
      else ignoredAddresses++
    }
    if (candidates.length === 0) {
      skipped.push({ minionId, reason: `no reservable address inside MANAGED_SUBNETS (mine has: ${addressSummary(addresses)})` })
      continue
    }
    const free = candidates.find((a) => holders.ip(a.ip) === undefined && !(input.byMac && a.mac !== undefined && holders.mac(a.mac) !== undefined))
    if (free === undefined) {
      const first = candidates[0]!
      const ipHolder = holders.ip(first.ip)
      conflicts.push(ipHolder !== undefined
        ? { minionId, reason: 'ip-taken', heldBy: ipHolder, ip: first.ip }
        : { minionId, reason: 'mac-taken', heldBy: holders.mac(first.mac!)!, mac: first.mac! })
      continue
    }
    const reservation: Held = { minionId, ip: free.ip, firstSeen: now }
    if (input.byMac && free.mac !== undefined) reservation.mac = free.mac
    fresh.push(reservation)
    holders.hold(reservation)
    added.push({ ...reservation, lastSeen: now })
  }

  const changed = replaced.length > 0 || removed.length > 0 || fresh.length > 0
  // `previous` was sorted, and deleting and replacing keep order: newcomers (sorted) are merged in.
  const ledger = new Ledger(fresh.length === 0 ? kept : merged(kept, fresh), input.mineRead === false ? previous.seenAt : now)
  // A replaced entry keeps its IP, MAC and name: with none added or removed, the index still holds.
  const sameHolders = fresh.length === 0 && removed.length === 0 ? indexes.get(previous.byId) : undefined
  if (sameHolders !== undefined && !indexes.has(ledger.byId)) indexes.set(ledger.byId, sameHolders)
  return { ledger, added, removed, unchanged, stale, changed, conflicts, skipped, keyGoneDueInMs, ignoredAddresses }
}
