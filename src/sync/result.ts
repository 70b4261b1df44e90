// What one sync did: the answer of `POST /resync?wait=true`, `DELETE /reservations/:id?wait=true`
// and `lastSync` in `GET /reservations`. Defined once in TypeBox; the type is derived from it.
import { Type, type Static } from 'typebox'
import { ConflictSchema, RemovalSchema, ReservationSchema, SkippedSchema } from '../ledger/reservation.js'
import { MineProblemSchema } from '../salt/mine.js'
import { MinionStatusSchema } from '../dnsmasq/minion-records.js'

export const SyncResultSchema = Type.Object({
  startedAt: Type.String(),
  durationMs: Type.Number(),
  added: Type.Array(ReservationSchema),
  removed: Type.Array(RemovalSchema, { description: 'reservations released, with the reason: \'destroyed\' (an event or DELETE) or \'key-gone\'' }),
  unchanged: Type.Array(Type.String(), { description: 'minion ids whose reservation was there before and stays' }),
  stale: Type.Array(Type.Object({ minionId: Type.String(), ip: Type.String(), staleSince: Type.String() })),
  conflicts: Type.Array(ConflictSchema),
  skipped: Type.Array(SkippedSchema),
  mineProblems: Type.Array(MineProblemSchema),
  keyListProblem: Type.Union([Type.String(), Type.Null()], { description: 'why the master\'s key list could not be read (no reservation is released as key-gone then)' }),
  keyGoneDueInMs: Type.Union([Type.Number(), Type.Null()], { description: 'the soonest a reservation whose key is gone will be released' }),
  ignoredAddresses: Type.Integer({ description: 'reservable addresses newcomers listed past the 32 each that are considered' }),
  filesChanged: Type.Array(Type.String()),
  applied: Type.Boolean({ description: 'dnsmasq was told to take the files in (reload or restart) by this sync' }),
  applyDueInMs: Type.Union([Type.Number(), Type.Null()], { description: 'an apply is owed and paced: the next sync in this many ms makes it' }),
  entriesWritten: Type.Integer(),
  entriesRemoved: Type.Integer(),
  unownedFiles: Type.Array(Type.String()),
  blocked: Type.Array(Type.String()),
  released: Type.Array(Type.String()),
  dnsmasqMinions: Type.Array(MinionStatusSchema, { description: 'DNSMASQ_PUBLISH=salt: each dnsmasq minion after this sync, current or behind (empty for local)' }),
  bytesSent: Type.Integer({ description: 'DNSMASQ_PUBLISH=salt: bytes of saltmasq.publish arguments sent to salt-api (0 for local)' }),
  releaseFailures: Type.Array(Type.Object({ minionId: Type.String(), ip: Type.String(), reason: Type.String() })),
  stagesMs: Type.Object({ mine: Type.Number(), ledger: Type.Number(), render: Type.Number(), write: Type.Number(), apply: Type.Number() }, {
    description: 'where the time went: mine read and parse, ledger update, rendering and writing files, applying and releasing leases',
  }),
})

export type SyncResult = Static<typeof SyncResultSchema>
