// The dry run behind GET /reservations/diff: what a sync would change right now. It reads the
// mine and the key list as a sync does and runs the same ledger rules, then asks the format
// which lines of which files would change; it saves, writes and applies nothing.
import { Type, type Static } from 'typebox'
import { ConflictSchema, RemovalSchema, ReservationSchema, SkippedSchema } from '../ledger/reservation.js'
import { MineProblemSchema, parseMine } from '../salt/mine.js'
import { applyRules, type PassDeps } from './pass.js'

export const DiffSchema = Type.Object({
  at: Type.String(),
  added: Type.Array(ReservationSchema),
  removed: Type.Array(RemovalSchema, { description: 'only key-gone removals: destroyed events and DELETE act at once' }),
  unchanged: Type.Integer({ description: 'reservations that stay as they are' }),
  stale: Type.Array(Type.Object({ minionId: Type.String(), ip: Type.String(), staleSince: Type.String() })),
  conflicts: Type.Array(ConflictSchema),
  skipped: Type.Array(SkippedSchema),
  mineProblems: Type.Array(MineProblemSchema),
  keyListProblem: Type.Union([Type.String(), Type.Null()]),
  files: Type.Array(Type.Object({ path: Type.String(), added: Type.Array(Type.String()), removed: Type.Array(Type.String()) }), {
    description: 'the lines each file would gain and lose (comments left out)',
  }),
  apply: Type.Union([Type.Literal('none'), Type.Literal('apply'), Type.Literal('checked-apply')], {
    description: 'what dnsmasq would be told: nothing, a reload or restart, or a check and then one (an owed apply included)',
  }),
})
export type Diff = Static<typeof DiffSchema>

export type DiffDeps = Omit<PassDeps, 'logger'>

export async function dryRun(deps: DiffDeps): Promise<Diff> {
  const { config } = deps
  const now = deps.clock()
  const keyList = deps.keys.latest
  const { snapshot, problems } = parseMine(await deps.client.mineGet(config.mine.target, config.mine.fun), deps.ledger.current)
  // No event's request: what the mine and the key list call for.
  const update = applyRules(deps, snapshot, keyList, { destroyed: new Set(), keyGoneHints: new Map() }, now)
  const { files, apply } = await deps.publisher.preview([...update.ledger.values()])
  return {
    at: new Date(now).toISOString(),
    added: update.added,
    removed: update.removed,
    unchanged: update.unchanged.length,
    stale: update.stale.map((r) => ({ minionId: r.minionId, ip: r.ip, staleSince: r.staleSince! })),
    conflicts: update.conflicts,
    skipped: update.skipped,
    mineProblems: problems,
    keyListProblem: keyList.problem,
    files,
    apply,
  }
}
