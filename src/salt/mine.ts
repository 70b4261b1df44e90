// Turns the return of the mine.get runner into a mine snapshot. Pure: whatever a minion put in
// its mine is untrusted input, so anything malformed is reported, never thrown.
import type { Static } from 'typebox'
import type { MineProblemSchema } from '../http/schemas.js'
import type { MineAddress, MineSnapshot } from '../ledger/ledger.js'
import { canonicalIp, canonicalMac } from '../ledger/validate.js'

export type MineProblem = Static<typeof MineProblemSchema>

export interface ParsedMine {
  snapshot: MineSnapshot
  problems: MineProblem[]
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** network.ip_addrs and friends: a list of address strings. */
function fromAddressList(list: unknown[]): MineAddress[] {
  const out: MineAddress[] = []
  for (const item of list) {
    const ip = typeof item === 'string' ? canonicalIp(item) : null
    if (ip !== null) out.push({ ip })
  }
  return out
}

/** network.interfaces: { eth0: { hwaddr, inet: [{address}], inet6: [{address}] } }. */
function fromInterfaces(interfaces: Record<string, unknown>): MineAddress[] {
  const out: MineAddress[] = []
  for (const name of Object.keys(interfaces).sort()) {
    const iface = interfaces[name]
    if (!isRecord(iface) || name === 'lo') continue
    const mac = typeof iface.hwaddr === 'string' ? canonicalMac(iface.hwaddr) : null
    for (const key of ['inet', 'inet6']) {
      const entries = iface[key]
      if (!Array.isArray(entries)) continue
      for (const entry of entries) {
        const ip = isRecord(entry) && typeof entry.address === 'string' ? canonicalIp(entry.address) : null
        if (ip !== null) out.push(mac === null ? { ip } : { ip, mac })
      }
    }
  }
  return out
}

/** What a minion already reserved is read for: only that the mine has it (its IP never changes). */
const PRESENT: { addresses: MineAddress[] } = Object.freeze({
  addresses: Object.freeze([]) as unknown as MineAddress[],
})

/**
 * `reserved`: minions that hold a reservation. Their addresses are not read (a sync needs only
 * that the mine has them), which at 50,000 minions spares a sync 150,000 address objects.
 */
export function parseMine(ret: unknown, reserved: { has: (minionId: string) => boolean } = new Set()): ParsedMine {
  const snapshot = new Map<string, { addresses: MineAddress[] }>()
  const problems: MineProblem[] = []
  if (!isRecord(ret)) {
    return {
      snapshot,
      problems: [
        {
          minionId: '*',
          reason: `mine.get returned ${Array.isArray(ret) ? 'a list' : typeof ret}, not a mapping of minions`,
        },
      ],
    }
  }
  for (const minionId of Object.keys(ret)) {
    const value = ret[minionId]
    const list = Array.isArray(value)
    if (!list && !isRecord(value)) {
      problems.push({
        minionId,
        reason: `its mine data is ${value === null ? 'null' : typeof value}, not a list of addresses or interfaces`,
      })
      continue
    }
    if (reserved.has(minionId)) snapshot.set(minionId, PRESENT)
    else snapshot.set(minionId, { addresses: list ? fromAddressList(value) : fromInterfaces(value) })
  }
  return { snapshot, problems }
}
