// The shapes the ledger speaks in, defined once in TypeBox: the HTTP schemas use them as they
// are and the TypeScript types are derived from them, so the two cannot drift apart.
import { Type, type Static } from 'typebox'
import { canonicalIp, canonicalMac, hostNameProblem } from './validate.js'

export const ReservationSchema = Type.Object({
  minionId: Type.String(),
  ip: Type.String(),
  mac: Type.Optional(Type.String()),
  firstSeen: Type.String({ description: 'when the reservation was made (ISO 8601)' }),
  lastSeen: Type.String({ description: 'the last sync that found the minion in the mine' }),
  staleSince: Type.Optional(Type.String({ description: 'set while the minion is missing from the mine; the reservation is kept' })),
  keyGoneSince: Type.Optional(Type.String({ description: 'set while the master has no key for the minion; past DESTROY_WHEN_KEY_GONE_S the reservation is released' })),
})
export type Reservation = Static<typeof ReservationSchema>

/** What dnsmasq is told of a reservation: the rest is saltmasq's own record. */
export type HostEntry = Pick<Reservation, 'minionId' | 'ip' | 'mac'>

/** A reservation that went, and why: its destroyed event (or an operator's delete), or its key gone for DESTROY_WHEN_KEY_GONE_S. */
export const RemovalSchema = Type.Intersect([ReservationSchema, Type.Object({ reason: Type.Union([Type.Literal('destroyed'), Type.Literal('key-gone')]) })])
export type Removal = Static<typeof RemovalSchema>

export const ConflictSchema = Type.Object({
  minionId: Type.String(),
  reason: Type.Union([Type.Literal('ip-taken'), Type.Literal('mac-taken'), Type.Literal('name-taken')]),
  heldBy: Type.String(),
  ip: Type.Optional(Type.String()),
  mac: Type.Optional(Type.String()),
})
export type Conflict = Static<typeof ConflictSchema>

export const SkippedSchema = Type.Object({ minionId: Type.String(), reason: Type.String() })
export type Skipped = Static<typeof SkippedSchema>

/** The one order reservations are kept, rendered and listed in. */
export function byMinionId(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Why `value` is not a reservation saltmasq could have written, or null when it is (a held one may have no lastSeen). */
export function reservationProblem(value: unknown, options: { lastSeen: 'required' | 'optional' } = { lastSeen: 'required' }): string | null {
  if (typeof value !== 'object' || value === null) return 'not an object'
  const r = value as Record<string, unknown>
  if (typeof r.minionId !== 'string' || hostNameProblem(r.minionId) !== null) return 'minionId is not a valid host name'
  if (typeof r.ip !== 'string' || canonicalIp(r.ip) !== r.ip) return 'ip is not a canonical address'
  if (r.mac !== undefined && (typeof r.mac !== 'string' || canonicalMac(r.mac) !== r.mac)) return 'mac is not a canonical MAC'
  if (typeof r.firstSeen !== 'string') return 'firstSeen must be a string'
  if (r.lastSeen === undefined ? options.lastSeen === 'required' : typeof r.lastSeen !== 'string') return 'lastSeen must be a string'
  if (r.staleSince !== undefined && typeof r.staleSince !== 'string') return 'staleSince must be a string'
  if (r.keyGoneSince !== undefined && typeof r.keyGoneSince !== 'string') return 'keyGoneSince must be a string'
  return null
}
