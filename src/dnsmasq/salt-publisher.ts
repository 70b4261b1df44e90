// Publishes reservations through Salt (DNSMASQ_PUBLISH=salt): saltmasq keeps only its state, and
// every dnsmasq minion DNSMASQ_MINION matches gets the files from one saltmasq.publish call,
// writes them and tells its dnsmasq. Calls carry deltas against the content each minion last
// confirmed (publish-payload.ts), so an addition at 50k reservations is a line, not a file. A
// minion that fails or does not answer is behind (publish-round.ts): recorded, reported, and
// caught up at the next sync while the others go on being updated.
// Over 200 lines: the calls to every minion and the catch-up of those behind share its state.
import type { Logger } from 'pino'
import type { Config } from '../config/index.js'
import { errors } from '../errors.js'
import type { DnsmasqHost } from '../ledger/reservation.js'
import type { LocalClient } from '../salt/local-call.js'
import { MinionRecords, minionStatus, type MinionStatus } from '../store/minion-records.js'
import type { Owed, OwedNeed } from '../store/owed-apply.js'
import { backoffDelay } from '../util/backoff.js'
import type { Clock } from '../util/clock.js'
import { msSince } from '../util/elapsed.js'
import { DnsmasqMinion, releaseLeases } from './dnsmasq-minion.js'
import type { ApplyNeed, FileLines, ReadBack } from './format.js'
import { FORMATS } from './formats/index.js'
import type { WholeFiles } from './formats/single-files.js'
import { lineChanges } from './lines.js'
import { ContentVersions, fileRoles, type FileHashes, type PublishFile, type RenderedFile } from './publish-payload.js'
import { answerOf, PublishRound, type Answer } from './publish-round.js'
import type { Published, Publisher, PublisherOptions, Released } from './publisher.js'

export type { FileRole } from './publish-payload.js'

/** The argument saltmasq.publish takes for each need: the minion's own words for it. */
const MINION_APPLY: Record<OwedNeed, string> = { 'apply': 'reload', 'checked-apply': 'checked-restart' }

export class SaltPublisher implements Publisher {
  readonly #client: LocalClient
  readonly #config: Config
  readonly #log: Logger
  readonly #clock: Clock
  readonly #records: MinionRecords
  readonly #render: (reservations: readonly DnsmasqHost[]) => WholeFiles
  readonly #need: OwedNeed
  readonly #roles: ReturnType<typeof fileRoles>
  readonly #versions: ContentVersions
  readonly #leases: DnsmasqMinion
  #catchUps = 0

  private constructor(records: MinionRecords, opts: PublisherOptions) {
    const format = FORMATS[opts.config.format]
    if (format.wholeFiles === null) {
      // Refused by the config already (a directory of files per call is not worth the payload).
      throw new errors.SALTMASQ_BAD_CONFIG(
        'DNSMASQ_PUBLISH',
        `salt publishing takes RESERVATIONS_FORMAT hostsfile or conf, not ${opts.config.format}`,
      )
    }
    this.#client = opts.client
    this.#config = opts.config
    this.#log = opts.logger
    this.#clock = opts.clock
    this.#records = records
    this.#render = format.wholeFiles(opts.config)
    this.#need = format.need
    this.#roles = fileRoles(opts.config)
    this.#versions = new ContentVersions(this.#roles.roleOf)
    this.#leases = new DnsmasqMinion(opts.client, opts.config.dnsmasq)
  }

  static async open(opts: PublisherOptions): Promise<SaltPublisher> {
    const records = await MinionRecords.open(`${opts.config.files.state}.minions`)
    const behind = [...records.all].filter(([, r]) => r.behindSince !== null || r.applyOwed).map(([m]) => m)
    if (behind.length > 0)
      opts.logger.info(
        { minions: behind },
        'dnsmasq minions behind before saltmasq stopped are caught up at the next sync',
      )
    return new SaltPublisher(records, opts)
  }

  /** Salt publishing keeps no dnsmasq files here: a lost state file is not rebuilt from them. */
  async readBack(): Promise<ReadBack> {
    return { source: `saltmasq.publish on ${this.#config.dnsmasq.minion}`, text: null }
  }

  remember(reservations: readonly DnsmasqHost[]): void {
    this.#rendered(reservations)
  }

  get dnsmasqMinions(): MinionStatus[] {
    return [...this.#records.all].map(([m, r]) => minionStatus(m, r)).sort((a, b) => (a.minion < b.minion ? -1 : 1))
  }

  /** Owed only when no dnsmasq minion holds the reservations: one that is behind is reported, not owed. */
  get owed(): (Owed & { paced: boolean }) | null {
    const records = [...this.#records.all.values()]
    if (records.length === 0 || records.some((r) => r.behindSince === null)) return null
    return { need: this.#need, since: Math.min(...records.map((r) => r.behindSince ?? this.#clock())), paced: false }
  }

  #rendered(reservations: readonly DnsmasqHost[]): RenderedFile[] {
    return this.#versions.keep(this.#render(reservations))
  }

  /** The files most known minions confirmed (the base of the first call's deltas). */
  #commonBase(): FileHashes | undefined {
    const counts = new Map<string, { files: FileHashes, n: number }>()
    for (const r of this.#records.all.values()) {
      const key = JSON.stringify(r.files)
      const c = counts.get(key) ?? { files: r.files, n: 0 }
      c.n++
      counts.set(key, c)
    }
    return [...counts.values()].sort((a, b) => b.n - a.n)[0]?.files
  }

  async #call(
    target: string,
    tgtType: string,
    files: PublishFile[],
    forceApply: boolean,
  ): Promise<{ answers: Map<string, Answer>, bytes: number }> {
    const kwarg = { files, apply: MINION_APPLY[this.#need], force_apply: forceApply }
    const bytes = Buffer.byteLength(JSON.stringify(kwarg))
    // Salt hands large arguments on slowly (~8 µs a byte): a call with whole files gets time for it.
    const timeoutMs = this.#config.salt.timeoutMs + Math.ceil(bytes / 50)
    const waitS = this.#config.dnsmasq.publishWaitS
    const replies = await this.#client.local(target, 'saltmasq.publish', [], { tgtType, kwarg, waitS, timeoutMs })
    return { answers: new Map(Object.entries(replies).map(([m, v]) => [m, answerOf(v, this.#roles.pathOf)])), bytes }
  }

  async preview(reservations: readonly DnsmasqHost[]): Promise<{ files: FileLines[], apply: ApplyNeed }> {
    const rendered = this.#rendered(reservations)
    const base = this.#commonBase()
    const files = rendered
      .filter((f) => base?.[f.path] !== f.hash)
      .map((f) => ({ path: f.path, ...lineChanges(this.#versions.text(base?.[f.path]), f.content) }))
    const owes = [...this.#records.all.values()].some((r) => r.applyOwed || r.behindSince !== null)
    return { files, apply: files.length === 0 && !owes ? 'none' : this.#need }
  }

  async publish(reservations: readonly DnsmasqHost[]): Promise<Published> {
    const started = performance.now()
    const rendered = this.#rendered(reservations)
    const desired = Object.fromEntries(rendered.map((f) => [f.path, f.hash]))
    const payload = this.#versions.payload(rendered, this.#commonBase())
    const prepareMs = msSince(started)

    const applyStarted = performance.now()
    const round = new PublishRound(this.#records, desired, this.#clock())
    // A call that changes files marks every minion as owing dnsmasq an apply first: after a
    // crash mid-call the next call tells dnsmasq again rather than leave written files untaken.
    if (payload.some((f) => !('hunks' in f) || f.hunks.length > 0)) {
      for (const [m, r] of round.known) if (!r.applyOwed) this.#records.set(m, { ...r, applyOwed: true })
      await this.#records.save()
    }
    const bytesSent = await this.#publishTo(round, rendered, payload, desired)
    await this.#records.save()
    this.#prune(desired)
    return {
      ...this.#outcome(),
      filesChanged: [...round.changed].sort(),
      entriesWritten: 0,
      entriesRemoved: 0,
      blocked: [],
      applied: round.applied,
      unownedFiles: [],
      bytesSent,
      prepareMs,
      writeMs: 0,
      applyMs: msSince(applyStarted),
    }
  }

  /** The call to every dnsmasq minion, then the calls again to those that need whole files or a forced apply. */
  async #publishTo(
    round: PublishRound,
    rendered: RenderedFile[],
    payload: PublishFile[],
    desired: FileHashes,
  ): Promise<number> {
    let bytesSent = 0
    let first: Map<string, Answer>
    try {
      const call = await this.#call(this.#config.dnsmasq.minion, this.#config.dnsmasq.targetType, payload, false)
      first = call.answers
      bytesSent += call.bytes
    } catch (err) {
      for (const m of round.known.keys()) round.behind(m, (err as Error).message)
      await this.#records.save()
      throw err
    }
    // Salt answers for every minion the target matches, with "Minion did not return" for one
    // that is down: a recorded minion missing from the answer no longer matches DNSMASQ_MINION.
    const gone = [...round.known.keys()].filter((m) => !first.has(m))
    for (const m of gone) this.#records.delete(m)
    if (gone.length > 0) this.#log.info({ minions: gone }, 'dnsmasq minions no longer match DNSMASQ_MINION: forgotten')
    const { whole, force } = round.settle(first, false)
    const callAgain = async (minions: string[], files: PublishFile[], forceApply: boolean): Promise<void> => {
      try {
        const call = await this.#call(minions.join(','), 'list', files, forceApply)
        bytesSent += call.bytes
        for (const m of minions) if (!call.answers.has(m)) round.behind(m, 'did not answer')
        round.settle(call.answers, true)
      } catch (err) {
        for (const m of minions) round.behind(m, (err as Error).message)
      }
    }
    await Promise.all([
      whole.length > 0
        ? callAgain(
            whole,
            this.#versions.payload(rendered, undefined),
            whole.some((m) => round.owedBefore(m)),
          )
        : null,
      force.length > 0 ? callAgain(force, this.#versions.payload(rendered, desired), true) : null,
    ])
    return bytesSent
  }

  /** The minions after a publish: an error when none holds the reservations, else when to catch up the ones behind. */
  #outcome(): { dnsmasqMinions: MinionStatus[], applyDueInMs: number | null } {
    const minions = this.dnsmasqMinions
    const lagging = minions.filter((s) => s.state === 'behind')
    for (const s of lagging) {
      this.#log.warn(
        { minion: s.minion, behindSince: s.behindSince, reason: s.reason },
        'dnsmasq minion behind: it is caught up at the next sync',
      )
    }
    const target = this.#config.dnsmasq.minion
    if (minions.length === 0) throw new errors.SALTMASQ_APPLY_NO_MINION(target, 'saltmasq.publish')
    if (lagging.length === minions.length) {
      throw new errors.SALTMASQ_NO_DNSMASQ_MINION_CURRENT(
        target,
        lagging.map((s) => `${s.minion}: ${s.reason ?? 'behind'}`).join('; '),
      )
    }
    const applyDueInMs = lagging.length === 0 ? null : 1000 + backoffDelay(this.#catchUps++, 1000, 60_000)
    if (lagging.length === 0) this.#catchUps = 0
    return { dnsmasqMinions: minions, applyDueInMs }
  }

  /** Keeps only the contents some minion holds, or that the last publish sent. */
  #prune(desired: FileHashes): void {
    const keep = new Set<string>()
    for (const h of Object.values(desired)) if (h !== null) keep.add(h)
    for (const r of this.#records.all.values()) for (const h of Object.values(r.files)) if (h !== null) keep.add(h)
    this.#versions.prune(keep)
  }

  async release(removed: readonly DnsmasqHost[]): Promise<Released> {
    return await releaseLeases(this.#leases, removed, this.#log)
  }
}
