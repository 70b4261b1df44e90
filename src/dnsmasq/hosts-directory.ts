// A directory dnsmasq watches with inotify (dhcp-hostsdir or hostsdir), holding one file per
// reservation. Keeps an index of the files it owns (name → content) so a sync touches only the
// files whose content changed. Every file is written under a dot-name (dnsmasq skips those) and
// renamed into place, so inotify only ever reports complete files; the directory is fsynced once
// per batch. Files saltmasq did not write (no saltmasq header) are left alone and reported.
import { join } from 'node:path'
import {
  ensureDirectory,
  listDirectory,
  readIfExists,
  removeFile,
  replaceFile,
  syncDirectory,
} from '../store/atomic-file.js'
import type { FileLines } from './format.js'
import { HEADER, lineChanges } from './lines.js'

/** Files written or read at once: enough to keep the thread pool busy, few enough for fd limits. */
const PARALLEL = 16

/** What `write` will do, worked out before touching the disk. */
export interface DirPlan {
  writes: Array<[string, string]>
  created: string[]
  replaced: Map<string, string>
  gone: string[]
  blocked: string[]
}

/** The name of a temporary `replaceFile` writes: `.<name>.<pid>.<8 hex>.tmp`. */
const TEMPORARY = /^\..+\.\d+\.[0-9a-f]{8}\.tmp$/

export interface DirChange {
  /** Files that did not exist before. */
  created: string[]
  /** Files that existed with other content: the old content, by name. */
  replaced: Map<string, string>
  /** Files removed: their last content, by name. */
  removed: Map<string, string>
  /** Wanted files not written because a file saltmasq does not own holds the name. */
  blocked: string[]
}

async function eachLimited<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker))
}

export class HostsDirectory {
  readonly path: string
  readonly #owned = new Map<string, string>()
  readonly #unowned = new Set<string>()

  private constructor(path: string) {
    this.path = path
  }

  /**
   * Reads what is in the directory now (creating it if missing). Temporaries left by a crash are
   * removed; a file without the saltmasq header is someone else's.
   */
  static async open(path: string): Promise<HostsDirectory> {
    const dir = new HostsDirectory(path)
    await ensureDirectory(path)
    const entries = await listDirectory(path)
    const leftovers = entries.filter((e) => e.isFile() && TEMPORARY.test(e.name))
    await eachLimited(leftovers, async (e) => {
      await removeFile(join(path, e.name))
    })
    const files = entries.filter((e) => !e.name.startsWith('.'))
    await eachLimited(files, async (e) => {
      if (!e.isFile()) {
        dir.#unowned.add(e.name)
        return
      }
      const content = await readIfExists(join(path, e.name))
      if (content === null) return
      if (content.startsWith(HEADER)) dir.#owned.set(e.name, content)
      else dir.#unowned.add(e.name)
    })
    return dir
  }

  /** Files in the directory that saltmasq did not write, sorted. */
  get unowned(): string[] {
    return [...this.#unowned].sort()
  }

  /** The content of every file saltmasq owns, by name. */
  get owned(): ReadonlyMap<string, string> {
    return this.#owned
  }

  /** What making the owned files exactly `wanted` takes; nothing is touched. */
  plan(wanted: ReadonlyMap<string, string>): DirPlan {
    const plan: DirPlan = { writes: [], created: [], replaced: new Map(), gone: [], blocked: [] }
    for (const [name, content] of wanted) {
      if (this.#unowned.has(name)) {
        plan.blocked.push(name)
        continue
      }
      const before = this.#owned.get(name)
      if (before === content) continue
      if (before === undefined) plan.created.push(name)
      else plan.replaced.set(name, before)
      plan.writes.push([name, content])
    }
    for (const name of this.#owned.keys()) if (!wanted.has(name)) plan.gone.push(name)
    return plan
  }

  /** A plan's changes, line by line, per file (files saltmasq would not write left out). */
  planLines({ writes, gone }: DirPlan): FileLines[] {
    return [
      ...writes.map(([name, content]) => ({
        path: join(this.path, name),
        ...lineChanges(this.#owned.get(name) ?? null, content),
      })),
      ...gone.map((name) => ({ path: join(this.path, name), ...lineChanges(this.#owned.get(name) ?? null, null) })),
    ]
  }

  /** Carries out a plan made by `plan`: writes new and changed files, removes the rest. */
  async write({ writes, created, replaced, gone, blocked }: DirPlan): Promise<DirChange> {
    const change: DirChange = { created, replaced, removed: new Map(), blocked }
    if (writes.length === 0 && gone.length === 0) return change

    await eachLimited(writes, async ([name, content]) => {
      await replaceFile(join(this.path, name), content)
      this.#owned.set(name, content)
    })
    await eachLimited(gone, async (name) => {
      await removeFile(join(this.path, name))
      change.removed.set(name, this.#owned.get(name)!)
      this.#owned.delete(name)
    })
    await syncDirectory(this.path)
    return change
  }
}
