// The ledger as the sync pass keeps it: in memory, saved to STATE_FILE (atomically, and only
// when a reservation changed) before dnsmasq sees anything that depends on it. With no state
// file, it is rebuilt from the reservations dnsmasq was last given, so losing the file loses no
// address.
import type { Logger } from 'pino'
import { emptyLedger, Ledger } from '../ledger/ledger.js'
import type { LedgerUpdate } from '../ledger/update.js'
import { byMinionId } from '../ledger/reservation.js'
import { parseLedger, serializeLedger } from '../store/ledger-file.js'
import type { ReadBack } from '../dnsmasq/format.js'
import { parseDhcpHosts } from '../dnsmasq/lines.js'
import { readIfExists, writeFileAtomic } from '../store/atomic-file.js'
import type { Clock } from '../util/clock.js'

export interface PublishedSource {
  readBack: () => Promise<ReadBack>
}

export class DurableLedger {
  readonly #path: string
  #current: Ledger
  /** Whether the file lags the ledger even when a sync changes nothing (absent, rebuilt, an older version). */
  #fileBehind: boolean

  private constructor(path: string, ledger: Ledger, fileBehind: boolean) {
    this.#path = path
    this.#current = ledger
    this.#fileBehind = fileBehind
  }

  static async open(path: string, published: PublishedSource, clock: Clock, log: Logger): Promise<DurableLedger> {
    const text = await readIfExists(path)
    if (text !== null) {
      const { ledger, version } = parseLedger(path, text)
      return new DurableLedger(path, ledger, version !== 2)
    }
    const { source, text: dhcpHosts } = await published.readBack()
    const { entries, unreadable } = parseDhcpHosts(dhcpHosts ?? '')
    if (entries.length === 0 && unreadable.length === 0) {
      // A first start: nothing to rebuild, nothing to warn about.
      log.info({ stateFile: path }, 'no state file and no reservations published yet: starting with an empty ledger')
      return new DurableLedger(path, emptyLedger(), true)
    }
    const stamp = new Date(clock()).toISOString()
    // The ledger keeps minion-id order (updateLedger relies on it); directory order is arbitrary.
    entries.sort((a, b) => byMinionId(a.minionId, b.minionId))
    log.warn(
      { source, reservations: entries.length, unreadable },
      'no state file: rebuilt the ledger from the dnsmasq file',
    )
    return new DurableLedger(
      path,
      new Ledger(new Map(entries.map((e) => [e.minionId, { ...e, firstSeen: stamp }])), null),
      true,
    )
  }

  get current(): Ledger {
    return this.#current
  }

  has(minionId: string): boolean {
    return this.#current.has(minionId)
  }

  /**
   * Takes a sync's ledger, writing the file first when a reservation changed. The time the
   * mine was read alone is not worth a write: after a restart, the first sync reads it again.
   */
  async save(update: Pick<LedgerUpdate, 'ledger' | 'changed'>): Promise<void> {
    if (update.changed || this.#fileBehind) {
      await writeFileAtomic(this.#path, serializeLedger(update.ledger))
      this.#fileBehind = false
    }
    this.#current = update.ledger
  }
}
