// Publishes reservations through Salt (DNSMASQ_PUBLISH=salt): saltmasq keeps only its state, and
// every dnsmasq minion DNSMASQ_MINION matches gets the files from one saltmasq.publish call,
// writes them and tells its dnsmasq. Calls carry deltas against the content each minion last
// confirmed (minion-records), so an addition at 50k reservations is a line, not a file. A
// minion that fails or does not answer is behind: recorded, reported, and caught up at the
// next sync while the others go on being updated.
// Over 250 lines: payload building, answer decoding and the catch-up of minions behind share
// this class's state; issue #20 moves the first two out of publish().
import { deflateSync } from 'node:zlib'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import { errors } from '../errors.js'
import type { HostEntry } from '../ledger/reservation.js'
import { localFailure, type LocalClient } from '../salt/local-call.js'
import { backoffDelay } from '../util/backoff.js'
import type { Clock } from '../util/clock.js'
import { msSince } from '../util/elapsed.js'
import { DnsmasqMinion, releaseLeases } from './dnsmasq-minion.js'
import type { ApplyNeed, FileLines, ReadBack } from './format.js'
import { confFiles } from './formats/conf.js'
import { hostsfileFiles } from './formats/hostsfile.js'
import type { WholeFiles } from './formats/single-files.js'
import { lineChanges } from './lines.js'
import { type Hunk, lineDelta, sha256, splitLines } from './line-delta.js'
import { MinionRecords, minionStatus, type MinionStatus } from '../store/minion-records.js'
import type { Owed } from '../store/owed-apply.js'
import type { Published, Publisher, PublisherOptions, Released } from './publisher.js'

/** What the minion does once files changed: the format's apply, made there in the same call. */
type MinionApply = 'reload' | 'checked-restart'

interface RenderedFile { path: string, content: string, hash: string }

/**
 * One file in a saltmasq.publish call: whole (zlib and base64: a call's arguments cross the
 * master's event bus twice, at ~8 µs a byte on Salt 3008), or hunks against the content `base`
 * hashes to.
 */
type PublishFile = { role: FileRole, hash: string, deflate: string } | { role: FileRole, hash: string, base: string, hunks: Hunk[] }

/**
 * What the minion knows a file as: its role. The path is the minion's own setting
 * (saltmasq:dnsmasq:files), never the caller's, and each role takes only reservation lines.
 */
export type FileRole = 'dhcp-hosts' | 'addn-hosts' | 'reservations-conf'

/** Each path saltmasq renders to, and the role the minion knows it by (both ways). */
function fileRoles(config: Config): { roleOf: (path: string) => FileRole, pathOf: (role: string) => string } {
  const byPath = new Map<string, FileRole>([[config.files.dhcpHosts, 'dhcp-hosts'], [config.files.addnHosts, 'addn-hosts'], [config.files.conf, 'reservations-conf']])
  const byRole = new Map([...byPath].map(([path, role]) => [role as string, path]))
  return {
    roleOf: (path) => byPath.get(path) ?? 'dhcp-hosts',
    // An answer names only roles it was sent; anything else is kept under its own name.
    pathOf: (role) => byRole.get(role) ?? role,
  }
}

/** Past this many changed lines a delta is not worth working out: the file goes whole. */
const MAX_DELTA_EDITS = 2000

/** The whole files each format puts on the dnsmasq host (the formats' own), and how dnsmasq takes them in. */
function wholeFiles(config: Config): { render: (rs: readonly HostEntry[]) => WholeFiles, apply: MinionApply } {
  switch (config.format) {
    case 'hostsfile':
      return { render: hostsfileFiles(config), apply: 'reload' }
    case 'conf':
      return { render: confFiles(config), apply: 'checked-restart' }
    default:
      // Refused by the config already (a directory of files per call is not worth the payload).
      throw new errors.SALTMASQ_BAD_CONFIG('DNSMASQ_PUBLISH', `salt publishing takes RESERVATIONS_FORMAT hostsfile or conf, not ${config.format}`)
  }
}

/** How one minion answered saltmasq.publish. */
type Answer =
  | { kind: 'ok', applied: boolean, changed: string[] }
  | { kind: 'stale' }
  | { kind: 'failed', reason: string, files: Record<string, string | null> }

/** A minion's answer, its files (keyed by role) put back under saltmasq's paths. */
function answerOf(value: unknown, pathOf: (role: string) => string): Answer {
  const r = (typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {}) as { result?: unknown, stale?: unknown, applied?: unknown, files?: Record<string, { status?: string, hash?: string | null }>, comment?: unknown }
  if (r.result === true) {
    const changed = Object.entries(r.files ?? {}).filter(([, f]) => f.status === 'written').map(([role]) => pathOf(role))
    return { kind: 'ok', applied: r.applied === true, changed }
  }
  if (r.stale === true) return { kind: 'stale' }
  const files: Record<string, string | null> = {}
  for (const [role, f] of Object.entries(r.files ?? {})) if (f.status !== 'stale' && f.status !== 'pending' && f.hash !== undefined) files[pathOf(role)] = f.hash
  return { kind: 'failed', reason: localFailure(value) ?? (typeof r.comment === 'string' ? r.comment : 'an answer saltmasq cannot read'), files }
}

export class SaltPublisher implements Publisher {
  readonly #client: LocalClient
  readonly #config: Config
  readonly #log: Logger
  readonly #clock: Clock
  readonly #records: MinionRecords
  readonly #files: ReturnType<typeof wholeFiles>
  readonly #roles: ReturnType<typeof fileRoles>
  readonly #leases: DnsmasqMinion
  /** Lines of each content some minion holds or is about to, by hash: what deltas start from. */
  #versions = new Map<string, string[]>()
  #catchUps = 0

  private constructor(records: MinionRecords, opts: PublisherOptions) {
    this.#client = opts.client
    this.#config = opts.config
    this.#log = opts.logger
    this.#clock = opts.clock
    this.#records = records
    this.#files = wholeFiles(opts.config)
    this.#roles = fileRoles(opts.config)
    this.#leases = new DnsmasqMinion(opts.client, opts.config.dnsmasq)
  }

  static async open(opts: PublisherOptions): Promise<SaltPublisher> {
    const records = await MinionRecords.open(`${opts.config.files.state}.minions`)
    const behind = [...records.all].filter(([, r]) => r.behindSince !== null || r.applyOwed).map(([m]) => m)
    if (behind.length > 0) opts.logger.info({ minions: behind }, 'dnsmasq minions behind before saltmasq stopped are caught up at the next sync')
    return new SaltPublisher(records, opts)
  }

  get #target(): { target: string, tgtType: string } {
    return { target: this.#config.dnsmasq.minion, tgtType: this.#config.dnsmasq.targetType }
  }

  /** Salt publishing keeps no dnsmasq files here: a lost state file is not rebuilt from them. */
  async readBack(): Promise<ReadBack> {
    return { source: `saltmasq.publish on ${this.#config.dnsmasq.minion}`, text: null }
  }

  remember(reservations: readonly HostEntry[]): void {
    this.#render(reservations)
  }

  get dnsmasqMinions(): MinionStatus[] {
    return [...this.#records.all].map(([m, r]) => minionStatus(m, r)).sort((a, b) => a.minion < b.minion ? -1 : 1)
  }

  /** Owed only when no dnsmasq minion holds the reservations: one that is behind is reported, not owed. */
  get owed(): (Owed & { paced: boolean }) | null {
    const records = [...this.#records.all.values()]
    if (records.length === 0 || records.some((r) => r.behindSince === null)) return null
    return { need: this.#files.apply === 'reload' ? 'apply' : 'checked-apply', since: Math.min(...records.map((r) => r.behindSince ?? this.#clock())), paced: false }
  }

  #render(reservations: readonly HostEntry[]): RenderedFile[] {
    return this.#files.render(reservations).map(([path, content]) => {
      const hash = sha256(content)
      if (!this.#versions.has(hash)) this.#versions.set(hash, splitLines(content))
      return { path, content, hash }
    })
  }

  /** The files most known minions confirmed (the base of the first call's deltas). */
  #commonBase(): Record<string, string | null> | undefined {
    const counts = new Map<string, { files: Record<string, string | null>, n: number }>()
    for (const r of this.#records.all.values()) {
      const key = JSON.stringify(r.files)
      const c = counts.get(key) ?? { files: r.files, n: 0 }
      c.n++
      counts.set(key, c)
    }
    return [...counts.values()].sort((a, b) => b.n - a.n)[0]?.files
  }

  #payload(rendered: readonly RenderedFile[], base: Record<string, string | null> | undefined): PublishFile[] {
    return rendered.map((f) => {
      const role = this.#roles.roleOf(f.path)
      const from = base?.[f.path]
      const lines = from === undefined || from === null ? undefined : this.#versions.get(from)
      if (from === f.hash) return { role, hash: f.hash, base: f.hash, hunks: [] }
      if (from !== undefined && from !== null && lines !== undefined) {
        const hunks = lineDelta(lines, this.#versions.get(f.hash)!, MAX_DELTA_EDITS)
        if (hunks !== null) return { role, hash: f.hash, base: from, hunks }
      }
      return { role, hash: f.hash, deflate: deflateSync(f.content).toString('base64') }
    })
  }

  async #call(target: string, tgtType: string, files: PublishFile[], forceApply: boolean): Promise<{ answers: Map<string, Answer>, bytes: number }> {
    const kwarg = { files, apply: this.#files.apply, force_apply: forceApply }
    const bytes = Buffer.byteLength(JSON.stringify(kwarg))
    // Salt hands large arguments on slowly (measured: ~8 µs a byte): a call with whole files
    // gets time for it on top of the usual deadline.
    const timeoutMs = this.#config.salt.timeoutMs + Math.ceil(bytes / 50)
    const replies = await this.#client.local(target, 'saltmasq.publish', [], { tgtType, kwarg, waitS: this.#config.dnsmasq.publishWaitS, timeoutMs })
    return { answers: new Map(Object.entries(replies).map(([m, v]) => [m, answerOf(v, this.#roles.pathOf)])), bytes }
  }

  async preview(reservations: readonly HostEntry[]): Promise<{ files: FileLines[], apply: ApplyNeed }> {
    const rendered = this.#render(reservations)
    const base = this.#commonBase()
    const files = rendered.filter((f) => base?.[f.path] !== f.hash).map((f) => {
      const from = base?.[f.path]
      const before = from === undefined || from === null ? null : this.#versions.get(from)?.map((l) => `${l}\n`).join('') ?? null
      return { path: f.path, ...lineChanges(before, f.content) }
    })
    const owes = [...this.#records.all.values()].some((r) => r.applyOwed || r.behindSince !== null)
    const apply: ApplyNeed = files.length === 0 && !owes ? 'none' : this.#files.apply === 'reload' ? 'apply' : 'checked-apply'
    return { files, apply }
  }

  async publish(reservations: readonly HostEntry[]): Promise<Published> {
    const started = performance.now()
    const rendered = this.#render(reservations)
    const desired = Object.fromEntries(rendered.map((f) => [f.path, f.hash]))
    const base = this.#commonBase()
    const payload = this.#payload(rendered, base)
    const prepareMs = msSince(started)

    const applyStarted = performance.now()
    const before = new Map(this.#records.all)
    const now = this.#clock()
    // A call that changes files marks every minion as owing dnsmasq an apply first: after a
    // crash mid-call the next call tells dnsmasq again rather than leave written files untaken.
    const changes = payload.some((f) => !('hunks' in f) || f.hunks.length > 0)
    if (changes) {
      for (const [m, r] of before) if (!r.applyOwed) this.#records.set(m, { ...r, applyOwed: true })
      await this.#records.save()
    }

    const changed = new Set<string>()
    let applied = false
    let bytesSent = 0
    const behind = (m: string, reason: string, files?: Record<string, string | null>): void => {
      const prior = before.get(m)
      this.#records.set(m, {
        files: { ...(prior?.files ?? {}), ...(files ?? {}) },
        applyOwed: true,
        behindSince: prior?.behindSince ?? now,
        reason,
        confirmedAt: prior?.confirmedAt ?? null,
      })
    }
    const current = (m: string): void => {
      this.#records.set(m, { files: desired, applyOwed: false, behindSince: null, reason: null, confirmedAt: now })
    }
    /** Records what each minion answered; returns those to call again whole, and those that still owe an apply. */
    const settle = (answers: Map<string, Answer>, again: boolean): { whole: string[], force: string[] } => {
      const out = { whole: [] as string[], force: [] as string[] }
      for (const [m, a] of answers) {
        if (a.kind === 'ok') {
          for (const path of a.changed) changed.add(path)
          applied ||= a.applied
          if ((before.get(m)?.applyOwed ?? false) && !a.applied && !again) out.force.push(m)
          else current(m)
        } else if (a.kind === 'stale') {
          if (again) behind(m, 'its files changed again while they were being sent whole')
          else out.whole.push(m)
        } else {
          behind(m, a.reason, a.files)
        }
      }
      return out
    }

    let first: Map<string, Answer>
    try {
      const call = await this.#call(this.#target.target, this.#target.tgtType, payload, false)
      first = call.answers
      bytesSent += call.bytes
    } catch (err) {
      for (const m of before.keys()) behind(m, (err as Error).message)
      await this.#records.save()
      throw err
    }
    // Salt answers for every minion the target matches, with "Minion did not return" for one
    // that is down: a recorded minion missing from the answer no longer matches DNSMASQ_MINION.
    const gone = [...before.keys()].filter((m) => !first.has(m))
    for (const m of gone) this.#records.delete(m)
    if (gone.length > 0) this.#log.info({ minions: gone }, 'dnsmasq minions no longer match DNSMASQ_MINION: forgotten')
    const { whole, force } = settle(first, false)
    const followUps: Array<Promise<void>> = []
    const callAgain = async (minions: string[], files: PublishFile[], forceApply: boolean): Promise<void> => {
      try {
        const call = await this.#call(minions.join(','), 'list', files, forceApply)
        bytesSent += call.bytes
        for (const m of minions) if (!call.answers.has(m)) behind(m, 'did not answer')
        settle(call.answers, true)
      } catch (err) {
        for (const m of minions) behind(m, (err as Error).message)
      }
    }
    if (whole.length > 0) followUps.push(callAgain(whole, this.#payload(rendered, undefined), whole.some((m) => before.get(m)?.applyOwed ?? false)))
    if (force.length > 0) followUps.push(callAgain(force, this.#payload(rendered, desired), true))
    await Promise.all(followUps)
    await this.#records.save()
    this.#prune(desired)

    const minions = this.dnsmasqMinions
    const lagging = minions.filter((s) => s.state === 'behind')
    for (const s of lagging) this.#log.warn({ minion: s.minion, behindSince: s.behindSince, reason: s.reason }, 'dnsmasq minion behind: it is caught up at the next sync')
    if (minions.length === 0) throw new errors.SALTMASQ_APPLY_NO_MINION(this.#target.target, 'saltmasq.publish')
    if (lagging.length === minions.length) throw new errors.SALTMASQ_NO_DNSMASQ_MINION_CURRENT(this.#target.target, lagging.map((s) => `${s.minion}: ${s.reason ?? 'behind'}`).join('; '))
    const applyDueInMs = lagging.length === 0 ? null : 1000 + backoffDelay(this.#catchUps++, 1000, 60_000)
    if (lagging.length === 0) this.#catchUps = 0
    return {
      filesChanged: [...changed].sort(),
      entriesWritten: 0,
      entriesRemoved: 0,
      blocked: [],
      applied,
      applyDueInMs,
      unownedFiles: [],
      dnsmasqMinions: minions,
      bytesSent,
      prepareMs,
      writeMs: 0,
      applyMs: msSince(applyStarted),
    }
  }

  /** Keeps only the contents some minion holds, or that the last publish sent. */
  #prune(desired: Record<string, string>): void {
    const keep = new Set<string>(Object.values(desired))
    for (const r of this.#records.all.values()) for (const h of Object.values(r.files)) if (h !== null) keep.add(h)
    for (const h of this.#versions.keys()) if (!keep.has(h)) this.#versions.delete(h)
  }

  async release(removed: readonly HostEntry[]): Promise<Released> {
    return await releaseLeases(this.#leases, removed, this.#log)
  }
}
