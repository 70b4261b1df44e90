// The dry run behind GET /reservations/diff: what a sync would change right now. It reads the
// mine and the key list as a sync does and runs the same ledger rules, then asks the format
// which lines of which files would change; it saves, writes and applies nothing.
import type { Static } from 'typebox'
import type { DiffSchema } from '../http/schemas.js'
import { parseMine } from '../salt/mine.js'
import { applyRules, type PassDeps } from './pass.js'

export type Diff = Static<typeof DiffSchema>

export type DiffDeps = Omit<PassDeps, 'logger'>

export async function dryRun(deps: DiffDeps): Promise<Diff> {
  const { config } = deps
  const now = deps.clock()
  const keyList = deps.keys.latest
  const { snapshot, problems } = parseMine(
    await deps.client.mineGet(config.mine.target, config.mine.fun),
    deps.ledger.current,
  )
  // No event's request: what the mine and the key list call for.
  const update = applyRules(deps, snapshot, keyList, { destroyed: new Set(), keyGoneHints: new Map() }, now)
  const { files, apply } = await deps.publisher.preview([...update.ledger.values()])
  return {
    at: new Date(now).toISOString(),
    added: update.added,
    removed: update.removed,
    kept: update.kept.length,
    stale: update.stale.map((r) => ({ minionId: r.minionId, ip: r.ip, staleSince: r.staleSince! })),
    conflicts: update.conflicts,
    skipped: update.skipped,
    mineProblems: problems,
    keyListProblem: keyList.problem,
    files,
    apply,
  }
}
