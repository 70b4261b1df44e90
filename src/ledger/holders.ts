// Who holds each IP, MAC and host name, so a newcomer never takes one that is held.
import type { StoredReservation, Ledger } from './ledger.js'
import { hostNameKey } from './validate.js'

/**
 * Who holds each IP, MAC and host name. Built only for a sync with newcomers, and kept per
 * ledger: a fleet with a standing conflict has "newcomers" every sync, and the next ledger,
 * when no reservation came or went, reads through to the same index instead of building its own.
 */
export class Holders {
  readonly #ip = new Map<string, string>()
  readonly #mac = new Map<string, string>()
  readonly #name = new Map<string, string>()
  readonly #parent: Holders | undefined

  constructor(parent?: Holders) {
    this.#parent = parent
  }

  static of(held: Iterable<StoredReservation>): Holders {
    const holders = new Holders()
    for (const r of held) holders.hold(r)
    return holders
  }

  hold(r: StoredReservation): void {
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
const indexes = new WeakMap<ReadonlyMap<string, StoredReservation>, Holders>()

export function holdersOf(ledger: Ledger): Holders {
  let holders = indexes.get(ledger.byId)
  if (holders === undefined) indexes.set(ledger.byId, (holders = Holders.of(ledger.values())))
  return holders
}

/** A ledger whose reservations kept their IPs, MACs and names shares its predecessor's index. */
export function shareHolders(previous: Ledger, next: Ledger): void {
  const same = indexes.get(previous.byId)
  if (same !== undefined && !indexes.has(next.byId)) indexes.set(next.byId, same)
}
