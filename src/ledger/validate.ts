// Pure checks for everything that may end up in a dnsmasq file: minion ids as host names,
// IP addresses (returned in one canonical spelling so that equal addresses compare equal),
// and the managed subnets. No I/O, no clock.
import { isIPv4, isIPv6 } from 'node:net'

// Letters, digits, '-' and '_'; not starting with '-' or '_', not ending with '-'. dnsmasq runs
// names with an upper-case letter through IDNA, which also refuses a trailing '-' and '--' in
// the third and fourth characters: found by the fuzz test against real `dnsmasq --test`.
const LABEL = /^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9_])?$/
const IDNA_RESERVED = /^..--/
// dhcp-host fields that dnsmasq reads as something other than a name.
const LEASE_TIME = /^\d+[smhdw]?$/i
const KEYWORD = /^(infinite|ignore)$/i
// The whole rule above in one expression: the fast path for the common, valid name (this runs
// for every reservation on every render). The label-by-label walk below only says why not.
const VALID_LABEL = '(?!..--)[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?'
const VALID_NAME = new RegExp(`^${VALID_LABEL}(?:\\.${VALID_LABEL})*$`)
const DIGITS_AND_DOTS = /^[0-9.]+$/
const MAX_LABEL = 63
const MAX_NAME = 253

/** Why `id` cannot be a dnsmasq host name (a minion id, or DNS_DOMAIN), or null when it can. */
export function hostNameProblem(id: string): string | null {
  if (id.length <= MAX_NAME && VALID_NAME.test(id)) return ambiguity(id)
  if (id.length === 0) return 'it is empty'
  if (id.length > MAX_NAME) return `it is ${id.length} characters long (at most ${MAX_NAME})`
  for (const label of id.split('.')) {
    if (label.length === 0) return 'it has an empty label'
    if (label.length > MAX_LABEL) return `a label is ${label.length} characters long (at most ${MAX_LABEL})`
    if (!LABEL.test(label)) {
      return 'labels may hold only letters, digits, - and _, may not start with - or _, and may not end with -'
    }
    if (IDNA_RESERVED.test(label)) return 'a label may not have \'--\' as its third and fourth characters'
  }
  return ambiguity(id)
}

/** A well-formed name that dnsmasq would still read as something else in a dhcp-host line. */
function ambiguity(id: string): string | null {
  if (LEASE_TIME.test(id)) return 'dnsmasq would read it as a lease time'
  if (KEYWORD.test(id)) return 'dnsmasq would read it as a keyword'
  if (DIGITS_AND_DOTS.test(id) && canonicalIp(id) !== null) return 'dnsmasq would read it as an address'
  return null
}

/** dnsmasq takes the first label as the host name: two ids sharing it would collide in DHCP. */
export function hostNameKey(id: string): string {
  const dot = id.indexOf('.')
  return (dot === -1 ? id : id.slice(0, dot)).toLowerCase()
}

export type IpFamily = 'ipv4' | 'ipv6'

/** The canonical spelling of an IP address, or null when `text` is not one. */
export function canonicalIp(text: string): string | null {
  if (isIPv4(text)) {
    // node accepts no leading zeros, so the dotted form is already canonical
    return text
  }
  if (isIPv6(text) && !text.includes('%')) {
    const host = new URL(`http://[${text}]`).hostname
    return host.slice(1, -1)
  }
  return null
}

export function ipFamily(ip: string): IpFamily {
  return ip.includes(':') ? 'ipv6' : 'ipv4'
}

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/

/** A MAC address in dnsmasq's lower-case colon form, or null. The all-zero MAC is no MAC. */
export function canonicalMac(text: string): string | null {
  const mac = text.toLowerCase().replaceAll('-', ':')
  if (!MAC.test(mac) || mac === '00:00:00:00:00:00') return null
  return mac
}

/** A canonical IPv4 address as a number, read digit by digit (every address of every newcomer passes here). */
function ipv4Number(ip: string): number {
  let n = 0
  let part = 0
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i)
    if (c === 46) {
      n = n * 256 + part
      part = 0
    } else part = part * 10 + c - 48
  }
  return n * 256 + part
}

/** A canonical IPv6 address as a 128-bit number. */
function ipv6Number(ip: string): bigint {
  const [head, tail] = ip.split('::') as [string, string | undefined]
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups =
    tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
  let n = 0n
  for (const g of groups) n = (n << 16n) | BigInt(parseInt(g, 16))
  return n
}

interface V4Net {
  net: number
  mask: number
  broadcast: number
}
interface V6Net {
  net: bigint
  mask: bigint
}

interface Parsed {
  v4: V4Net[]
  v6: V6Net[]
  cidrs: string[]
}

/** CIDRs (or, with `bareIsHost`, bare addresses as /32 and /128), parsed once. */
function parseCidrs(cidrs: readonly string[], bareIsHost: boolean): Parsed {
  const out: Parsed = { v4: [], v6: [], cidrs: [] }
  for (const cidr of cidrs) {
    const slash = cidr.indexOf('/')
    const ip = canonicalIp(slash === -1 ? cidr : cidr.slice(0, slash))
    const prefixText =
      slash === -1 ? (bareIsHost && ip !== null ? (ipFamily(ip) === 'ipv4' ? '32' : '128') : '') : cidr.slice(slash + 1)
    if (ip === null || !/^\d{1,3}$/.test(prefixText)) {
      throw new Error(`'${cidr}' is not a CIDR such as 10.0.0.0/24 or fd00::/64${bareIsHost ? ', nor an address' : ''}`)
    }
    const prefix = Number(prefixText)
    if (ipFamily(ip) === 'ipv4') {
      if (prefix > 32) throw new Error(`'${cidr}' has a prefix longer than the address`)
      const mask = prefix === 0 ? 0 : 2 ** 32 - 2 ** (32 - prefix)
      const net = maskV4(ipv4Number(ip), mask)
      out.v4.push({ net, mask, broadcast: (net | (~mask >>> 0)) >>> 0 })
    } else {
      if (prefix > 128) throw new Error(`'${cidr}' has a prefix longer than the address`)
      const mask = ((1n << BigInt(prefix)) - 1n) << BigInt(128 - prefix)
      out.v6.push({ net: ipv6Number(ip) & mask, mask })
    }
    out.cidrs.push(`${ip}/${prefix}`)
  }
  return out
}

function inV4(nets: V4Net[], n: number): V4Net | undefined {
  return nets.find((s) => maskV4(n, s.mask) === s.net)
}

/**
 * The subnets saltmasq hands out reservations in, parsed once from MANAGED_SUBNETS, less
 * EXCLUDED_ADDRESSES. Checked by plain arithmetic: it runs for every address a newcomer lists.
 */
export class Subnets {
  readonly cidrs: readonly string[]
  readonly excluded: readonly string[]
  readonly #in: Parsed
  readonly #out: Parsed

  constructor(cidrs: readonly string[], excluded: readonly string[] = []) {
    this.#in = parseCidrs(cidrs, false)
    if (this.#in.cidrs.length === 0) throw new Error('at least one subnet is needed')
    this.#out = parseCidrs(excluded, true)
    this.cidrs = this.#in.cidrs
    this.excluded = this.#out.cidrs
  }

  /** Whether a managed subnet holds `ip` (canonical). */
  contains(ip: string): boolean {
    if (ipFamily(ip) === 'ipv4') return inV4(this.#in.v4, ipv4Number(ip)) !== undefined
    if (this.#in.v6.length === 0) return false
    const n = ipv6Number(ip)
    return this.#in.v6.some((s) => (n & s.mask) === s.net)
  }

  /**
   * Whether `ip` (canonical) may be reserved: inside a managed subnet, not its network or
   * broadcast address (IPv6: not the subnet-router anycast address), not excluded.
   */
  reservable(ip: string): boolean {
    if (ipFamily(ip) === 'ipv4') {
      const n = ipv4Number(ip)
      const net = inV4(this.#in.v4, n)
      if (net === undefined) return false
      // A /31 or /32 has no network or broadcast address (RFC 3021).
      if (net.mask < 0xfffffffe && (n === net.net || n === net.broadcast)) return false
      return inV4(this.#out.v4, n) === undefined
    }
    const n = ipv6Number(ip)
    const net = this.#in.v6.find((s) => (n & s.mask) === s.net)
    if (net === undefined) return false
    if (net.mask !== (1n << 128n) - 1n && n === net.net) return false
    return !this.#out.v6.some((s) => (n & s.mask) === s.net)
  }
}

/** `n & mask` for unsigned 32-bit values (JavaScript's & is signed). */
function maskV4(n: number, mask: number): number {
  return (n & mask) >>> 0
}
