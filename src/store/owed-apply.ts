// An apply dnsmasq is owed: files changed that dnsmasq has not been told about (the apply failed,
// is paced, or saltmasq stopped first). Recorded on disk before any file changes, so a crash or
// a restart cannot lose it; cleared once an apply succeeds.
// The file is `{"version": 1, "need", "since"}`; one without a version (before 0.2) is read alike.
import { Type, type Static } from 'typebox'
import { readIfExists, removeFile, writeFileAtomic } from './atomic-file.js'
import { schemaProblem } from './json-file.js'

/** An apply dnsmasq is owed: a reload or restart, or a syntax check and then one. */
export type OwedNeed = 'apply' | 'checked-apply'

export interface Owed {
  need: OwedNeed
  /** epoch ms */
  since: number
}

export const OwedApplyFile = Type.Object({
  version: Type.Optional(Type.Literal(1)),
  need: Type.Union([Type.Literal('apply'), Type.Literal('checked-apply')]),
  since: Type.Number(),
})

/** What `text` says is owed; unreadable means we cannot tell, so the most careful apply is owed. */
function owedIn(text: string, now: number): Owed {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { need: 'checked-apply', since: now }
  }
  if (schemaProblem(OwedApplyFile, value) !== null) return { need: 'checked-apply', since: now }
  const { need, since } = value as Static<typeof OwedApplyFile>
  return { need, since }
}

export class OwedApply {
  readonly path: string
  #owed: Owed | null

  private constructor(path: string, owed: Owed | null) {
    this.path = path
    this.#owed = owed
  }

  /** Reads the record at `path`; a marker an older saltmasq left at `legacyPath` counts too. */
  static async open(path: string, now: number, legacyPath?: string): Promise<OwedApply> {
    const text = await readIfExists(path)
    const record = new OwedApply(path, text === null ? null : owedIn(text, now))
    if (legacyPath !== undefined && (await readIfExists(legacyPath)) !== null) {
      await record.record('apply', now)
      await removeFile(legacyPath)
    }
    return record
  }

  get owed(): Owed | null {
    return this.#owed
  }

  /** Durable before it returns. A check once owed stays owed until an apply clears it. */
  async record(need: Owed['need'], now: number): Promise<void> {
    const next: Owed = {
      need: this.#owed?.need === 'checked-apply' ? 'checked-apply' : need,
      since: this.#owed?.since ?? now,
    }
    if (this.#owed !== null && this.#owed.need === next.need) return
    await writeFileAtomic(this.path, `${JSON.stringify({ version: 1, ...next })}\n`)
    this.#owed = next
  }

  async clear(): Promise<void> {
    if (this.#owed === null) return
    await removeFile(this.path)
    this.#owed = null
  }
}
