// hostsfile format (the default): every reservation in one dhcp-hostsfile and one addn-hosts
// file, the base, which dnsmasq re-reads on SIGHUP. With HOSTSFILE_DELTAS (the default), a sync
// that only adds reservations writes the new dhcp-host lines as one delta file in DHCP_HOSTSDIR,
// which dnsmasq reads through inotify: no signal, one file's cost however large the fleet. Their
// names go the same way into DNS_HOSTSDIR while the fleet is small enough for that to be cheap
// (B5: a DNS file read through inotify costs dnsmasq work in proportion to every reservation it
// holds, ~0.3 s at 50,000 and 15 s at 100,000); above that a new machine's name is in DNS
// through its lease at once, and in addn-hosts at the next compaction.
// A sync that removes or changes a reservation compacts: the base files rewritten with
// everything, the delta files removed, one SIGHUP, paced to one per RELOAD_MIN_INTERVAL_S
// (dnsmasq keeps a removed line until then, so its address is not handed out meanwhile).
// A change cannot go in a delta: dnsmasq 2.90 refuses a dhcp-hostsdir line whose address the
// base already holds ("duplicate dhcp-host IP address"), so the base line would keep winning.
// Too many delta files or lines are compacted too, at a quiet moment (a sync that adds nothing),
// and so is a batch of additions larger than the bounds (a first start).
import { join } from 'node:path'
import type { Config } from '../../config/index.js'
import type { OpenFormat, PendingWrite } from '../format.js'
import { HostsDirectory } from '../hosts-directory.js'
import type { DnsmasqHost } from '../../ledger/reservation.js'
import { bodyLines, HEADER, inOrder, LineRenderer } from '../lines.js'
import { readIfExists } from '../../store/atomic-file.js'
import { prepareFiles, wholeFilesFormat, type WholeFiles } from './single-files.js'

/** Past either bound the delta files are folded into the base at the next quiet sync. */
export const DELTA_BOUNDS = { files: 32, lines: 5000 }

/** Up to this many reservations, new names also go into DNS as a delta file (cheap there, B5). */
export const DNS_DELTA_MAX_RESERVATIONS = 10_000

/** A delta file that holds no reservation (emptied by a compaction, kept for its name). */
function isEmpty(content: string | undefined): boolean {
  return content === undefined || bodyLines(content).length === 0
}

/**
 * delta-000001, delta-000002…: names dnsmasq reads (no dot, no ~). The lowest name that is free
 * in both directories (absent, or emptied by a compaction) is used again, so the directories
 * never hold more than the bound of files.
 */
function nextDeltaName(...dirs: readonly HostsDirectory[]): string {
  for (let n = 1; ; n++) {
    const name = `delta-${String(n).padStart(6, '0')}`
    if (dirs.every((dir) => isEmpty(dir.owned.get(name)))) return name
  }
}

function rendererFor(config: Config): LineRenderer {
  return new LineRenderer(config.dnsDomain === undefined ? {} : { domain: config.dnsDomain })
}

/** The base files, whole: the dhcp-hostsfile first, then addn-hosts (salt publishing sends the same). */
export function hostsfileFiles(
  config: Config,
  renderer = rendererFor(config),
): (reservations: readonly DnsmasqHost[]) => WholeFiles {
  return (reservations) => {
    const files = renderer.hostsFiles(reservations)
    return [
      [config.files.dhcpHosts, files.dhcpHosts],
      [config.files.addnHosts, files.addnHosts],
    ]
  }
}

export const openHostsfile: OpenFormat = async (config) => {
  const { dhcpHosts } = config.files
  const renderer = rendererFor(config)
  const render = hostsfileFiles(config, renderer)
  if (!config.hostsfileDeltas) return wholeFilesFormat('hostsfile', render, 'apply', dhcpHosts)
  const deltas = await HostsDirectory.open(config.files.dhcpHostsDir)
  const dnsDeltas = await HostsDirectory.open(config.files.dnsHostsDir)
  // Every sync reads the base back (a hand edit is put right); it is parsed again only when its
  // text is not what was parsed last time, which at 50,000 reservations saves a split and a set
  // of 50,000 lines per sync.
  let parsedBase: { text: string, lines: Set<string> } | null = null
  const baseLines = (text: string): Set<string> => {
    if (parsedBase?.text !== text) parsedBase = { text, lines: new Set(bodyLines(text)) }
    return parsedBase.lines
  }
  return {
    name: 'hostsfile',
    // Only compactions (removals, changes, bounds) are applied; they are paced.
    pacedApply: true,
    get unownedFiles() {
      return [
        ...deltas.unowned.map((name) => join(deltas.path, name)),
        ...dnsDeltas.unowned.map((name) => join(dnsDeltas.path, name)),
      ]
    },
    prepare: async (reservations) => {
      const sorted = inOrder(reservations)
      // Whole files only for a compaction: a sync that adds or changes nothing joins no 50,000 lines.
      const whole = async (): Promise<PendingWrite> =>
        await compaction(await prepareFiles(render(sorted), 'apply'), [deltas, dnsDeltas])
      const base = await readIfExists(dhcpHosts)
      // No base yet (a first start): it is written whole, with the one SIGHUP that takes it in.
      if (base === null) return await whole()
      const inBase = baseLines(base)
      // Each delta file's lines, once: emptied files (kept for their names) hold none.
      const deltaBodies = [...deltas.owned.values()].map(bodyLines).filter((lines) => lines.length > 0)
      const deltaLines = deltaBodies.flat()
      const inDeltas = new Set(deltaLines)
      const added: DnsmasqHost[] = []
      for (const r of sorted) {
        const line = renderer.dhcpLine(r)
        if (!inBase.has(line) && !inDeltas.has(line)) added.push(r)
      }
      // Lines are unique: something on disk is not wanted when disk holds more than the wanted lines it has.
      let onDisk = inBase.size
      for (const line of inDeltas) if (!inBase.has(line)) onDisk++
      const removed = onDisk > sorted.length - added.length
      const overBounds = deltaBodies.length >= DELTA_BOUNDS.files || deltaLines.length >= DELTA_BOUNDS.lines
      // A batch larger than the bounds (a first start, a restored fleet) goes into the base at once.
      if (removed || added.length > DELTA_BOUNDS.lines || (overBounds && added.length === 0)) return await whole()
      if (added.length === 0) return noChange()
      const names = reservations.length <= DNS_DELTA_MAX_RESERVATIONS ? added.map((r) => renderer.hostsLine(r)) : []
      return deltaWrite(
        deltas,
        added.map((r) => renderer.dhcpLine(r)),
        dnsDeltas,
        names,
      )
    },
    readBack: async () => ({
      source: `${dhcpHosts} and ${deltas.path}`,
      text: [(await readIfExists(dhcpHosts)) ?? '', ...deltas.owned.values()].join(''),
    }),
  }
}

/** Nothing to write: what is on disk already holds every reservation (addn-hosts waits for a compaction). */
function noChange(): PendingWrite {
  return {
    need: 'none',
    lines: () => [],
    commit: async () => ({ filesChanged: [], entriesWritten: 0, entriesRemoved: 0, blocked: [], undo: async () => {} }),
  }
}

/** The new lines as one more delta file (and their names as another): read through inotify, with no signal. */
function deltaWrite(deltas: HostsDirectory, added: string[], dnsDeltas: HostsDirectory, names: string[]): PendingWrite {
  const name = nextDeltaName(deltas, dnsDeltas)
  const file = (lines: string[]): string => HEADER + lines.map((l) => `${l}\n`).join('')
  const plan = deltas.plan(new Map([...deltas.owned, [name, file(added)]]))
  const dnsPlan = names.length === 0 ? null : dnsDeltas.plan(new Map([...dnsDeltas.owned, [name, file(names)]]))
  return {
    need: 'none',
    lines: () => [...deltas.planLines(plan), ...(dnsPlan === null ? [] : dnsDeltas.planLines(dnsPlan))],
    commit: async () => {
      // The DHCP file first: a name never resolves to an address dnsmasq would not hand out.
      await deltas.write(plan)
      if (dnsPlan !== null) await dnsDeltas.write(dnsPlan)
      return {
        filesChanged: [join(deltas.path, name), ...(dnsPlan === null ? [] : [join(dnsDeltas.path, name)])],
        entriesWritten: added.length,
        entriesRemoved: 0,
        blocked: [],
        undo: async () => {},
      }
    },
  }
}

/**
 * Everything into the base files, the delta files emptied, one SIGHUP. The base is written
 * first: a crash before the delta files are emptied leaves lines twice, which dnsmasq takes once.
 * Emptied, not removed: dnsmasq answers the removal of a watched file with "cannot read" in its log.
 */
async function compaction(base: PendingWrite, dirs: readonly HostsDirectory[]): Promise<PendingWrite> {
  const emptied = (dir: HostsDirectory): Map<string, string> =>
    new Map([...dir.owned].map(([name, content]) => [name, isEmpty(content) ? content : HEADER]))
  const clears = dirs.map((dir) => [dir, dir.plan(emptied(dir))] as const)
  return {
    need: 'apply',
    lines: () => [...base.lines(), ...clears.flatMap(([dir, clear]) => dir.planLines(clear))],
    commit: async () => {
      const written = await base.commit()
      let cleared = 0
      const dirsChanged: string[] = []
      for (const [dir, clear] of clears) {
        const change = await dir.write(clear)
        cleared += change.replaced.size
        if (change.replaced.size > 0) dirsChanged.push(dir.path)
      }
      return { ...written, filesChanged: [...written.filesChanged, ...dirsChanged], entriesRemoved: cleared }
    },
  }
}
