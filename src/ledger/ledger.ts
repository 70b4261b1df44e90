// The reservation ledger: which minion holds which IP, in minion-id order. Immutable: a sync
// that changes no reservation makes a ledger over the same map. The rules that change it are
// update.ts's; who holds what, for those rules, is holders.ts's.
import type { Conflict, Removal, Reservation, Skipped } from './reservation.js'

export type { Conflict, Removal, Reservation, Skipped }

/**
 * A reservation as the ledger holds it. One the mine still has was seen by the ledger's last
 * sync (`Ledger.seenAt`) and has no lastSeen of its own, so a sync does not copy every
 * reservation to say so, and an entry changes only when the reservation does. A stale one keeps
 * when the mine last had it.
 */
export type StoredReservation = Omit<Reservation, 'lastSeen'> & { lastSeen?: string }

/**
 * Reservations by minion id, in minion-id order, and when the mine was last read. Immutable: a
 * sync that changes no reservation makes a ledger over the same map, so at 50,000 reservations
 * it neither copies nor rebuilds one.
 */
export class Ledger implements ReadonlyMap<string, StoredReservation> {
  readonly #byId: ReadonlyMap<string, StoredReservation>
  /** When the mine was last read: every reservation that is not stale was in it then. Null before the first read. */
  readonly seenAt: string | null

  /** `byId` in minion-id order; it is taken, not copied, and must not change afterwards. */
  constructor(byId: ReadonlyMap<string, StoredReservation>, seenAt: string | null) {
    this.#byId = byId
    this.seenAt = seenAt
  }

  get size(): number {
    return this.#byId.size
  }

  get(minionId: string): StoredReservation | undefined {
    return this.#byId.get(minionId)
  }

  has(minionId: string): boolean {
    return this.#byId.has(minionId)
  }

  keys(): MapIterator<string> {
    return this.#byId.keys()
  }

  values(): MapIterator<StoredReservation> {
    return this.#byId.values()
  }

  entries(): MapIterator<[string, StoredReservation]> {
    return this.#byId.entries()
  }

  [Symbol.iterator](): MapIterator<[string, StoredReservation]> {
    return this.#byId[Symbol.iterator]()
  }

  forEach(fn: (value: StoredReservation, key: string, map: ReadonlyMap<string, StoredReservation>) => void): void {
    for (const [key, value] of this.#byId) fn(value, key, this)
  }

  /** The map itself, for what is kept per map (the holders' index). */
  get byId(): ReadonlyMap<string, StoredReservation> {
    return this.#byId
  }
}

/** A held reservation as the API and the sync results show it. */
export function asReservation(held: StoredReservation, seenAt: string | null): Reservation {
  return held.lastSeen !== undefined ? (held as Reservation) : { ...held, lastSeen: seenAt ?? held.firstSeen }
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

export function emptyLedger(): Ledger {
  return new Ledger(new Map(), null)
}
