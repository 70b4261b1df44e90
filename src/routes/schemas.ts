// Response shapes shared by several routes.
import { Type } from 'typebox'

export const ErrorReply = Type.Object({
  statusCode: Type.Integer(),
  code: Type.Optional(Type.String()),
  error: Type.String(),
  message: Type.String(),
})

const ReservationSchema = Type.Object({
  minionId: Type.String(),
  ip: Type.String(),
  mac: Type.Optional(Type.String()),
  firstSeen: Type.String(),
  lastSeen: Type.String(),
  staleSince: Type.Optional(Type.String()),
})

export const Reservations = Type.Array(ReservationSchema)

export const SyncResultSchema = Type.Object({
  startedAt: Type.String(),
  durationMs: Type.Number(),
  added: Reservations,
  removed: Reservations,
  unchanged: Type.Array(Type.String()),
  stale: Type.Array(Type.Object({ minionId: Type.String(), ip: Type.String(), staleSince: Type.String() })),
  conflicts: Type.Array(Type.Object({
    minionId: Type.String(),
    reason: Type.String(),
    heldBy: Type.String(),
    ip: Type.Optional(Type.String()),
    mac: Type.Optional(Type.String()),
  })),
  skipped: Type.Array(Type.Object({ minionId: Type.String(), reason: Type.String() })),
  mineProblems: Type.Array(Type.Object({ minionId: Type.String(), reason: Type.String() })),
  filesChanged: Type.Array(Type.String()),
  applied: Type.Boolean(),
  reloadDueInMs: Type.Union([Type.Number(), Type.Null()]),
  entriesWritten: Type.Integer(),
  entriesRemoved: Type.Integer(),
  unownedFiles: Type.Array(Type.String()),
  blocked: Type.Array(Type.String()),
  released: Type.Array(Type.String()),
  releaseFailures: Type.Array(Type.Object({ minionId: Type.String(), ip: Type.String(), reason: Type.String() })),
  stagesMs: Type.Object({ mine: Type.Number(), ledger: Type.Number(), render: Type.Number(), write: Type.Number(), apply: Type.Number() }),
})

export const WaitQuery = Type.Object({
  wait: Type.Boolean({ default: false, description: 'wait for the sync and return its result' }),
})
