// Every shape the HTTP API answers with, defined once in TypeBox. The rooms that produce them
// derive their TypeScript types from these (Static), so the OpenAPI document and the code cannot
// drift apart. Imports nothing of saltmasq: every room may use it.
import { Type } from 'typebox'

export const ErrorReply = Type.Object({
  statusCode: Type.Integer(),
  code: Type.Optional(Type.String()),
  error: Type.String(),
  message: Type.String(),
})

export const WaitQuery = Type.Object({
  wait: Type.Boolean({ default: false, description: 'wait for the sync and return its result' }),
})

// The ledger's reservations, as the API lists them.
export const ReservationSchema = Type.Object({
  minionId: Type.String(),
  ip: Type.String(),
  mac: Type.Optional(Type.String()),
  firstSeen: Type.String({ description: 'when the reservation was made (ISO 8601)' }),
  lastSeen: Type.String({ description: 'the last sync that found the minion in the mine' }),
  staleSince: Type.Optional(
    Type.String({ description: 'set while the minion is missing from the mine; the reservation is kept' }),
  ),
  keyGoneSince: Type.Optional(
    Type.String({
      description:
        'set while the master has no key for the minion; past DESTROY_WHEN_KEY_GONE_S the reservation is released',
    }),
  ),
})

/**
 * A reservation that went, and why: its destroyed event (or an operator's delete), or its key
 * gone for DESTROY_WHEN_KEY_GONE_S.
 */
export const RemovalSchema = Type.Intersect([
  ReservationSchema,
  Type.Object({ reason: Type.Union([Type.Literal('destroyed'), Type.Literal('key-gone')]) }),
])

export const ConflictSchema = Type.Object({
  minionId: Type.String(),
  reason: Type.Union([Type.Literal('ip-taken'), Type.Literal('mac-taken'), Type.Literal('name-taken')]),
  heldBy: Type.String(),
  ip: Type.Optional(Type.String()),
  mac: Type.Optional(Type.String()),
})

export const SkippedSchema = Type.Object({ minionId: Type.String(), reason: Type.String() })

export const MineProblemSchema = Type.Object({ minionId: Type.String(), reason: Type.String() })

export const MinionStatusSchema = Type.Object(
  {
    minion: Type.String(),
    state: Type.Union([Type.Literal('current'), Type.Literal('behind')]),
    behindSince: Type.Union([Type.String(), Type.Null()]),
    reason: Type.Union([Type.String(), Type.Null()], {
      description: 'why it is behind: its answer, or that it did not answer',
    }),
    confirmedAt: Type.Union([Type.String(), Type.Null()], {
      description: 'when it last confirmed holding the reservations',
    }),
  },
  { description: 'a dnsmasq minion saltmasq publishes to through Salt (DNSMASQ_PUBLISH=salt)' },
)

// What one sync did: POST /resync?wait=true, DELETE /reservations/:id?wait=true, lastSync.
export const SyncResultSchema = Type.Object({
  startedAt: Type.String(),
  durationMs: Type.Number(),
  added: Type.Array(ReservationSchema),
  removed: Type.Array(RemovalSchema, {
    description: 'reservations released, with the reason: \'destroyed\' (an event or DELETE) or \'key-gone\'',
  }),
  kept: Type.Array(Type.String(), {
    description:
      'minion ids whose reservation was there before and stays (as it was, or newly stale, back, or with its key gone)',
  }),
  stale: Type.Array(Type.Object({ minionId: Type.String(), ip: Type.String(), staleSince: Type.String() })),
  conflicts: Type.Array(ConflictSchema),
  skipped: Type.Array(SkippedSchema),
  mineProblems: Type.Array(MineProblemSchema),
  keyListProblem: Type.Union([Type.String(), Type.Null()], {
    description: 'why the master\'s key list could not be read (no reservation is released as key-gone then)',
  }),
  keyGoneDueInMs: Type.Union([Type.Number(), Type.Null()], {
    description: 'the soonest a reservation whose key is gone will be released',
  }),
  ignoredAddresses: Type.Integer({
    description: 'reservable addresses newcomers listed past the 32 each that are considered',
  }),
  filesChanged: Type.Array(Type.String()),
  applied: Type.Boolean({ description: 'dnsmasq was told to take the files in (reload or restart) by this sync' }),
  applyDueInMs: Type.Union([Type.Number(), Type.Null()], {
    description: 'an apply is owed and paced: the next sync in this many ms makes it',
  }),
  entriesWritten: Type.Integer(),
  entriesRemoved: Type.Integer(),
  unownedFiles: Type.Array(Type.String()),
  blocked: Type.Array(Type.String()),
  released: Type.Array(Type.String()),
  dnsmasqMinions: Type.Array(MinionStatusSchema, {
    description: 'DNSMASQ_PUBLISH=salt: each dnsmasq minion after this sync, current or behind (empty for local)',
  }),
  bytesSent: Type.Integer({
    description: 'DNSMASQ_PUBLISH=salt: bytes of saltmasq.publish arguments sent to salt-api (0 for local)',
  }),
  releaseFailures: Type.Array(Type.Object({ minionId: Type.String(), ip: Type.String(), reason: Type.String() })),
  stagesMs: Type.Object(
    { mine: Type.Number(), ledger: Type.Number(), render: Type.Number(), write: Type.Number(), apply: Type.Number() },
    {
      description:
        'where the time went: mine read and parse, ledger update, rendering and writing files, applying '
        + 'and releasing leases',
    },
  ),
})

/** What a route that runs a sync answers: its result with ?wait=true, else 202; the errors a sync can end in. */
export const SyncReplies = {
  200: SyncResultSchema,
  202: Type.Object({ accepted: Type.Literal(true) }),
  400: ErrorReply,
  401: ErrorReply,
  502: ErrorReply,
  504: ErrorReply,
}

// The dry run behind GET /reservations/diff.
export const DiffSchema = Type.Object({
  at: Type.String(),
  added: Type.Array(ReservationSchema),
  removed: Type.Array(RemovalSchema, {
    description: 'only key-gone removals: destroyed events and DELETE act at once',
  }),
  kept: Type.Integer({ description: 'reservations that stay (as they are, or with a new mark)' }),
  stale: Type.Array(Type.Object({ minionId: Type.String(), ip: Type.String(), staleSince: Type.String() })),
  conflicts: Type.Array(ConflictSchema),
  skipped: Type.Array(SkippedSchema),
  mineProblems: Type.Array(MineProblemSchema),
  keyListProblem: Type.Union([Type.String(), Type.Null()]),
  files: Type.Array(
    Type.Object({ path: Type.String(), added: Type.Array(Type.String()), removed: Type.Array(Type.String()) }),
    {
      description: 'the lines each file would gain and lose (comments left out)',
    },
  ),
  apply: Type.Union([Type.Literal('none'), Type.Literal('apply'), Type.Literal('checked-apply')], {
    description:
      'what dnsmasq would be told: nothing, a reload or restart, or a check and then one (an owed apply included)',
  }),
})

// salt-api's event stream, as /ready tells it.
export const StreamStateSchema = Type.Object({
  connected: Type.Boolean(),
  connectedSince: Type.Union([Type.String(), Type.Null()]),
  /** Connections opened after the first. */
  reconnects: Type.Integer(),
  lastEventAt: Type.Union([Type.String(), Type.Null()], { description: 'the last event of any kind on the bus' }),
  lastUsedEventAt: Type.Union([Type.String(), Type.Null()], { description: 'the last cloud or key event' }),
  eventsSeen: Type.Integer(),
  eventsUsed: Type.Integer(),
  lastError: Type.Union([Type.String(), Type.Null()]),
  disconnectedSince: Type.Union([Type.String(), Type.Null()]),
  busyResyncs: Type.Integer({
    description: 'full syncs run because the bus was too busy for the stream to be trusted',
  }),
  recordsRefused: Type.Integer({
    description:
      'records refused (a cloud or key tag line that differs from its '
      + 'JSON tag, holds a control character, or comes with several tag or data lines) or cut out for their size '
      + '(over 1 MiB, whatever their tag)',
  }),
})
