// The ledger's input with nothing but a mine: no destroys, no key list, reserve by address.
import type { MineSnapshot } from '../../src/ledger/ledger.js'
import type { LedgerInput } from '../../src/ledger/update.js'
import type { Subnets } from '../../src/ledger/validate.js'

export function mineOnly(
  mine: MineSnapshot, subnets: Subnets, now: Date, extra: Partial<LedgerInput> = {},
): LedgerInput {
  return { mine, destroyed: new Set(), subnets, byMac: false, keys: null, keyGoneAfterMs: 0, now, ...extra }
}
