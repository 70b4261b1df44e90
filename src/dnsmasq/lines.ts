// Reservations → the lines dnsmasq reads, and back. Pure. Every format renders through here, so
// this is the last gate before dnsmasq: it refuses (throws) rather than emit a line dnsmasq's
// parser would reject or that could smuggle in another directive, whatever validation happened
// upstream.
import { errors } from '../errors.js'
import { byMinionId, type DnsmasqHost } from '../ledger/reservation.js'
import { canonicalIp, canonicalMac, hostNameProblem, ipFamily } from '../ledger/validate.js'

export interface RenderOptions {
  /** Also publish `<id>.<domain>` in DNS for ids that are bare host names. */
  domain?: string
}

/** A file's lines, as saltmasq and the minion module split them: every line ends in a newline. */
export function splitLines(content: string): string[] {
  if (content === '') return []
  return (content.endsWith('\n') ? content.slice(0, -1) : content).split('\n')
}

/** First line of every file saltmasq writes; in a hosts directory it marks the files saltmasq owns. */
export const HEADER = '# Managed by saltmasq. Any change made here will be overwritten.\n'

function checked(r: DnsmasqHost): DnsmasqHost {
  const nameProblem = hostNameProblem(r.minionId)
  if (nameProblem !== null) throw new errors.SALTMASQ_RENDER_REFUSED(`host name '${r.minionId}': ${nameProblem}`)
  if (canonicalIp(r.ip) !== r.ip) throw new errors.SALTMASQ_RENDER_REFUSED(`address '${r.ip}' of ${r.minionId}`)
  if (r.mac !== undefined && canonicalMac(r.mac) !== r.mac)
    throw new errors.SALTMASQ_RENDER_REFUSED(`MAC '${r.mac}' of ${r.minionId}`)
  return r
}

/** The part after `dhcp-host=`: `[mac,]ip,name` (IPv6 in brackets), as dnsmasq reads it. */
function dhcpHostFields(r: DnsmasqHost): string {
  const ip = ipFamily(r.ip) === 'ipv6' ? `[${r.ip}]` : r.ip
  return r.mac === undefined ? `${r.minionId},${ip}` : `${r.mac},${ip},${r.minionId}`
}

function hostsLine(r: DnsmasqHost, domain: string | undefined): string {
  const names = [r.minionId]
  if (domain !== undefined && !r.minionId.includes('.')) names.push(`${r.minionId}.${domain}`)
  return `${r.ip} ${names.join(' ')}`
}

function lines(body: string[]): string {
  return body.length === 0 ? HEADER : `${HEADER}${body.join('\n')}\n`
}

function checkedDomain(options: RenderOptions): string | undefined {
  if (options.domain !== undefined) {
    const problem = hostNameProblem(options.domain)
    if (problem !== null) throw new errors.SALTMASQ_RENDER_REFUSED(`domain '${options.domain}': ${problem}`)
  }
  return options.domain
}

/** In minion-id order: the ledger hands them over sorted, so this is one pass and no copy. */
export function inOrder<T extends DnsmasqHost>(reservations: readonly T[]): readonly T[] {
  if (reservations.every((r, i) => i === 0 || reservations[i - 1]!.minionId < r.minionId)) return reservations
  return [...reservations].sort((a, b) => byMinionId(a.minionId, b.minionId))
}

/**
 * Checks and renders each reservation's lines once per entry object. The ledger keeps an
 * unchanged reservation's object from sync to sync (and replaces, never edits, one that
 * changes), so at 50,000 reservations a sync that changed nothing checks and formats nothing.
 */
export class LineRenderer {
  readonly #domain: string | undefined
  readonly #memo = new WeakMap<DnsmasqHost, { dhcp: string, hosts: string }>()

  constructor(options: RenderOptions = {}) {
    this.#domain = checkedDomain(options)
  }

  #of(r: DnsmasqHost): { dhcp: string, hosts: string } {
    let rendered = this.#memo.get(r)
    if (rendered === undefined) {
      checked(r)
      rendered = { dhcp: dhcpHostFields(r), hosts: hostsLine(r, this.#domain) }
      this.#memo.set(r, rendered)
    }
    return rendered
  }

  /** The part after `dhcp-host=` (a dhcp-hostsfile line). */
  dhcpLine(r: DnsmasqHost): string {
    return this.#of(r).dhcp
  }

  /** An addn-hosts line: `ip name [name.domain]`. */
  hostsLine(r: DnsmasqHost): string {
    return this.#of(r).hosts
  }

  /** A dhcp-hostsfile (`[mac,]ip,name` per reservation) and an addn-hosts file (`ip name [name.domain]`). */
  hostsFiles(reservations: readonly DnsmasqHost[]): { dhcpHosts: string, addnHosts: string } {
    const sorted = inOrder(reservations)
    return {
      dhcpHosts: lines(sorted.map((r) => this.#of(r).dhcp)),
      addnHosts: lines(sorted.map((r) => this.#of(r).hosts)),
    }
  }

  /** A conf-dir file of `dhcp-host=` lines (read by dnsmasq only at start). */
  confFile(reservations: readonly DnsmasqHost[]): string {
    return lines(inOrder(reservations).map((r) => `dhcp-host=${this.#of(r).dhcp}`))
  }

  /**
   * hostsdir format: the files for each reservation, named by minion id. dnsmasq skips names that
   * start with '.' or end with '~' (and '#...#'), which is where atomic writes keep their
   * temporaries; a valid minion id can be none of those, and this refuses one that would be.
   */
  entries(reservations: readonly DnsmasqHost[]): RenderedEntries {
    const out: RenderedEntries = { dhcpHosts: new Map(), dnsHosts: new Map() }
    for (const r of reservations) {
      if (!SAFE_FILE_NAME.test(r.minionId)) throw new errors.SALTMASQ_RENDER_REFUSED(`file name '${r.minionId}'`)
      const { dhcp, hosts } = this.#of(r)
      out.dhcpHosts.set(r.minionId, lines([dhcp]))
      out.dnsHosts.set(r.minionId, lines([hosts]))
    }
    return out
  }
}

/** One file per reservation, by file name, for each watched directory (dhcp-hostsdir, hostsdir). */
export interface RenderedEntries {
  dhcpHosts: Map<string, string>
  dnsHosts: Map<string, string>
}

const SAFE_FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/

/**
 * Reads reservations back from lines this module wrote (any format's DHCP part), so a lost
 * state file can be rebuilt from what dnsmasq is serving. Lines it cannot read are returned
 * apart, never guessed at.
 */
export function parseDhcpHosts(text: string): { entries: DnsmasqHost[], unreadable: string[] } {
  const entries: DnsmasqHost[] = []
  const unreadable: string[] = []
  for (const raw of splitLines(text)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const fields = line
      .replace(/^dhcp-host=/, '')
      .split(',')
      .map((f) => f.replace(/^\[(.*)\]$/, '$1'))
    const [a, b, c] = fields
    const entry =
      fields.length === 2 && a !== undefined && b !== undefined
        ? { minionId: a, ip: canonicalIp(b) }
        : fields.length === 3 && a !== undefined && b !== undefined && c !== undefined
          ? { minionId: c, ip: canonicalIp(b), mac: canonicalMac(a) ?? undefined }
          : null
    if (
      entry === null
      || entry.ip === null
      || hostNameProblem(entry.minionId) !== null
      || (fields.length === 3 && entry.mac === undefined)
    ) {
      unreadable.push(line)
      continue
    }
    entries.push(
      entry.mac === undefined
        ? { minionId: entry.minionId, ip: entry.ip }
        : { minionId: entry.minionId, ip: entry.ip, mac: entry.mac },
    )
  }
  return { entries, unreadable }
}

/** The lines of a file saltmasq wrote, comments left out. */
export function bodyLines(text: string | null): string[] {
  return splitLines(text ?? '').filter((l) => l !== '' && !l.startsWith('#'))
}

/** The lines `after` has and `before` lacks, and the other way round; comments left out. */
export function lineChanges(before: string | null, after: string | null): { added: string[], removed: string[] } {
  const [old, now] = [bodyLines(before), bodyLines(after)]
  const oldSet = new Set(old)
  const nowSet = new Set(now)
  return { added: now.filter((l) => !oldSet.has(l)), removed: old.filter((l) => !nowSet.has(l)) }
}
