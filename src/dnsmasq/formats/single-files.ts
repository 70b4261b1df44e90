// The write path of formats that put every reservation in a few whole files (hostsfile, conf):
// only files whose content changed are written (atomically), and their previous content is
// kept so a failed check can put it back.
import { readIfExists, restore, writeFileAtomic } from '../../store/atomic-file.js'
import type { FormatName } from '../../config/index.js'
import type { ApplyNeed, Format, PendingWrite } from '../format.js'
import type { DnsmasqHost } from '../../ledger/reservation.js'
import { lineChanges } from '../lines.js'

/** A format's files, whole, as [path, content]. */
export type WholeFiles = ReadonlyArray<readonly [string, string]>

/** The write that makes each path hold its content; `need` is what dnsmasq needs if any changed. */
export async function prepareFiles(wanted: WholeFiles, need: Exclude<ApplyNeed, 'none'>): Promise<PendingWrite> {
  const changes: Array<{ path: string, content: string, previous: string | null }> = []
  for (const [path, content] of wanted) {
    const previous = await readIfExists(path)
    if (previous !== content) changes.push({ path, content, previous })
  }
  return {
    need: changes.length === 0 ? 'none' : need,
    lines: () => changes.map((c) => ({ path: c.path, ...lineChanges(c.previous, c.content) })),
    commit: async () => {
      // A failure part-way leaves the apply owed (recorded before this): the next sync finishes it.
      for (const { path, content } of changes) await writeFileAtomic(path, content)
      return {
        filesChanged: changes.map((c) => c.path),
        entriesWritten: 0,
        entriesRemoved: 0,
        blocked: [],
        undo: async () => {
          for (const { path, previous } of changes) await restore(path, previous)
        },
      }
    },
  }
}

/**
 * A format that renders its whole files every sync and writes those that changed; `dhcpSource`
 * is the file its DHCP reservations are read back from when the state file is lost.
 */
export function wholeFilesFormat(
  name: FormatName,
  render: (reservations: readonly DnsmasqHost[]) => WholeFiles,
  need: Exclude<ApplyNeed, 'none'>,
  dhcpSource: string,
): Format {
  return {
    name,
    pacedApply: false,
    unownedFiles: [],
    prepare: async (reservations) => await prepareFiles(render(reservations), need),
    readBack: async () => ({ source: dhcpSource, text: await readIfExists(dhcpSource) }),
  }
}
