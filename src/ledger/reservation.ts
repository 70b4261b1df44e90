// The shapes the ledger speaks in: derived from the API's schemas (http/schemas.ts), so the two
// cannot drift apart.
import type { Static } from 'typebox'
import type { ConflictSchema, RemovalSchema, ReservationSchema, SkippedSchema } from '../http/schemas.js'
import { canonicalIp, canonicalMac, hostNameProblem } from './validate.js'

export type Reservation = Static<typeof ReservationSchema>
export type Removal = Static<typeof RemovalSchema>
export type Conflict = Static<typeof ConflictSchema>
export type Skipped = Static<typeof SkippedSchema>

/** What dnsmasq is told of a reservation: the rest is saltmasq's own record. */
export type DnsmasqHost = Pick<Reservation, 'minionId' | 'ip' | 'mac'>

/** The one order reservations are kept, rendered and listed in. */
export function byMinionId(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * Why `value` is not a reservation saltmasq could have written, or null when it is (a stored one
 * may have no lastSeen).
 */
export function reservationProblem(
  value: unknown,
  options: { lastSeen: 'required' | 'optional' } = { lastSeen: 'required' },
): string | null {
  if (typeof value !== 'object' || value === null) return 'not an object'
  const r = value as Record<string, unknown>
  if (typeof r.minionId !== 'string' || hostNameProblem(r.minionId) !== null) return 'minionId is not a valid host name'
  if (typeof r.ip !== 'string' || canonicalIp(r.ip) !== r.ip) return 'ip is not a canonical address'
  if (r.mac !== undefined && (typeof r.mac !== 'string' || canonicalMac(r.mac) !== r.mac))
    return 'mac is not a canonical MAC'
  if (typeof r.firstSeen !== 'string') return 'firstSeen must be a string'
  if (r.lastSeen === undefined ? options.lastSeen === 'required' : typeof r.lastSeen !== 'string')
    return 'lastSeen must be a string'
  if (r.staleSince !== undefined && typeof r.staleSince !== 'string') return 'staleSince must be a string'
  if (r.keyGoneSince !== undefined && typeof r.keyGoneSince !== 'string') return 'keyGoneSince must be a string'
  return null
}
