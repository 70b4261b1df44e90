// An apply dnsmasq is owed: files changed that dnsmasq has not been told about (the apply failed,
// is paced, or saltmasq stopped first). Recorded on disk before any file changes, so a crash or
// a restart cannot lose it; cleared once an apply succeeds.
import { readIfExists, removeFile, writeFileAtomic } from '../store/atomic-file.js'
import type { ApplyNeed } from './format.js'

export interface Owed {
  need: Exclude<ApplyNeed, 'none'>
  /** epoch ms */
  since: number
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
    let owed: Owed | null = null
    if (text !== null) {
      // Unreadable means we cannot tell what was owed: owe the most careful apply.
      try {
        const parsed = JSON.parse(text) as Partial<Owed>
        owed = { need: parsed.need === 'apply' ? 'apply' : 'checked-apply', since: typeof parsed.since === 'number' ? parsed.since : now }
      } catch {
        owed = { need: 'checked-apply', since: now }
      }
    }
    const record = new OwedApply(path, owed)
    if (legacyPath !== undefined && await readIfExists(legacyPath) !== null) {
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
    await writeFileAtomic(this.path, `${JSON.stringify(next)}\n`)
    this.#owed = next
  }

  async clear(): Promise<void> {
    if (this.#owed === null) return
    await removeFile(this.path)
    this.#owed = null
  }
}
