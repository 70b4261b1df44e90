// What one sync did; the schema is the API's (http/schemas.ts).
import type { Static } from 'typebox'
import type { SyncResultSchema } from '../http/schemas.js'

export type SyncResult = Static<typeof SyncResultSchema>

/** The log line's fields for a finished sync: what changed, in a line a person can read. */
export function syncSummary(result: SyncResult): Record<string, unknown> {
  return {
    added: result.added.map((r) => `${r.minionId}=${r.ip}`),
    removed: result.removed.map((r) => r.minionId),
    conflicts: result.conflicts.length,
    skipped: result.skipped.length,
    stale: result.stale.length,
    filesChanged: result.filesChanged,
    applied: result.applied,
    ms: result.durationMs,
  }
}
