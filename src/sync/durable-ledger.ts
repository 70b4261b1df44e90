// The ledger as the sync pass keeps it: in memory, saved to STATE_FILE (atomically, and only
// when it changed) before dnsmasq sees anything that depends on it. With no state file, it is
// rebuilt from the reservations dnsmasq was last given, so losing the file loses no address.
import type { Logger } from 'pino'
import { emptyLedger, type Ledger } from '../ledger/ledger.js'
import { byMinionId } from '../ledger/reservation.js'
import { parseLedger, serializeLedger } from '../ledger/state-file.js'
import { parseDhcpHosts } from '../dnsmasq/lines.js'
import { readIfExists, writeIfChanged } from '../store/atomic-file.js'
import type { Clock } from '../util/clock.js'

export interface PublishedSource {
  readBack: () => Promise<{ source: string, text: string | null }>
}

export class DurableLedger {
  readonly #path: string
  #current: Ledger

  private constructor (path: string, ledger: Ledger) {
    this.#path = path
    this.#current = ledger
  }

  static async open (path: string, published: PublishedSource, clock: Clock, log: Logger): Promise<DurableLedger> {
    const text = await readIfExists(path)
    if (text !== null) return new DurableLedger(path, parseLedger(path, text))
    const { source, text: dhcpHosts } = await published.readBack()
    if (dhcpHosts === null) return new DurableLedger(path, emptyLedger())
    const { entries, unreadable } = parseDhcpHosts(dhcpHosts)
    const stamp = new Date(clock()).toISOString()
    // The ledger keeps minion-id order (updateLedger relies on it); directory order is arbitrary.
    entries.sort((a, b) => byMinionId(a.minionId, b.minionId))
    log.warn({ source, reservations: entries.length, unreadable }, 'no state file: rebuilt the ledger from the dnsmasq file')
    return new DurableLedger(path, new Map(entries.map((e) => [e.minionId, { ...e, firstSeen: stamp, lastSeen: stamp }])))
  }

  get current (): Ledger {
    return this.#current
  }

  has (minionId: string): boolean {
    return this.#current.has(minionId)
  }

  async save (next: Ledger): Promise<void> {
    await writeIfChanged(this.#path, serializeLedger(next))
    this.#current = next
  }
}
