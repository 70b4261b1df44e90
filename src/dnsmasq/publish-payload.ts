// What a saltmasq.publish call carries: each file by its role, whole (zlib and base64: a call's
// arguments cross the master's event bus twice, at ~8 µs a byte on Salt 3008) or as hunks against
// the content a minion last confirmed. The contents some minion may hold are kept by hash.
import { deflateSync } from 'node:zlib'
import type { Config } from '../config/index.js'
import { type Hunk, lineDelta, sha256, splitLines } from './line-delta.js'
import type { WholeFiles } from './formats/single-files.js'

/**
 * What the minion knows a file as: its role. The path is the minion's own setting
 * (saltmasq:dnsmasq:files), never the caller's, and each role takes only reservation lines.
 */
export type FileRole = 'dhcp-hosts' | 'addn-hosts' | 'reservations-conf'

export type PublishFile =
  { role: FileRole, hash: string, deflate: string } | { role: FileRole, hash: string, base: string, hunks: Hunk[] }

export interface RenderedFile {
  path: string
  content: string
  hash: string
}

/** The hash of each file a minion holds, by path; null: it has no such file. */
export type FileHashes = Record<string, string | null>

/** Past this many changed lines a delta is not worth working out: the file goes whole. */
const MAX_DELTA_EDITS = 2000

/** Each path saltmasq renders to, and the role the minion knows it by (both ways). */
export function fileRoles(config: Config): { roleOf: (path: string) => FileRole, pathOf: (role: string) => string } {
  const byPath = new Map<string, FileRole>([
    [config.files.dhcpHosts, 'dhcp-hosts'],
    [config.files.addnHosts, 'addn-hosts'],
    [config.files.conf, 'reservations-conf'],
  ])
  const byRole = new Map([...byPath].map(([path, role]) => [role as string, path]))
  return {
    roleOf: (path) => byPath.get(path) ?? 'dhcp-hosts',
    // An answer names only roles it was sent; anything else is kept under its own name.
    pathOf: (role) => byRole.get(role) ?? role,
  }
}

export class ContentVersions {
  /** Lines of each content some minion holds or is about to, by hash: what deltas start from. */
  readonly #lines = new Map<string, string[]>()
  readonly #roleOf: (path: string) => FileRole

  constructor(roleOf: (path: string) => FileRole) {
    this.#roleOf = roleOf
  }

  /** Hashes the files and keeps their lines. */
  keep(files: WholeFiles): RenderedFile[] {
    return files.map(([path, content]) => {
      const hash = sha256(content)
      if (!this.#lines.has(hash)) this.#lines.set(hash, splitLines(content))
      return { path, content, hash }
    })
  }

  /** The content a hash stands for, or null when it is not kept. */
  text(hash: string | null | undefined): string | null {
    if (hash === undefined || hash === null) return null
    return (
      this.#lines
        .get(hash)
        ?.map((l) => `${l}\n`)
        .join('') ?? null
    )
  }

  /** Each file as a delta against `base` where it is kept and small enough, else whole. */
  payload(rendered: readonly RenderedFile[], base: FileHashes | undefined): PublishFile[] {
    return rendered.map((f) => {
      const role = this.#roleOf(f.path)
      const from = base?.[f.path]
      if (from === f.hash) return { role, hash: f.hash, base: f.hash, hunks: [] }
      const lines = from === undefined || from === null ? undefined : this.#lines.get(from)
      if (from !== undefined && from !== null && lines !== undefined) {
        const hunks = lineDelta(lines, this.#lines.get(f.hash)!, MAX_DELTA_EDITS)
        if (hunks !== null) return { role, hash: f.hash, base: from, hunks }
      }
      return { role, hash: f.hash, deflate: deflateSync(f.content).toString('base64') }
    })
  }

  /** Keeps only the contents in `keep`. */
  prune(keep: ReadonlySet<string>): void {
    for (const h of this.#lines.keys()) if (!keep.has(h)) this.#lines.delete(h)
  }
}
