// Publishes reservations to a dnsmasq on this host (DNSMASQ_PUBLISH=local): the format writes
// its files, and dnsmasq is told through Salt only when the format says it must. The order makes a crash harmless at
// any
// point: the owed apply is recorded on disk before any file changes, and cleared only after the
// apply succeeded. A format whose apply is costly has its applies paced to one per
// RELOAD_MIN_INTERVAL_S; the caller syncs again when `applyDueInMs` says.
import type { Logger } from 'pino'
import { errors } from '../errors.js'
import type { DnsmasqHost } from '../ledger/reservation.js'
import type { Clock } from '../util/clock.js'
import { msSince } from '../util/elapsed.js'
import { DnsmasqMinion, releaseLeases } from './dnsmasq-minion.js'
import type { ApplyNeed, FileLines, Format, ReadBack } from './format.js'
import { FORMATS } from './formats/index.js'
import { OwedApply, type Owed } from '../store/owed-apply.js'
import type { MinionStatus } from '../store/minion-records.js'
import type { Published, Publisher, PublisherOptions, Released } from './publisher.js'

export class LocalPublisher implements Publisher {
  readonly #format: Format
  readonly #minion: DnsmasqMinion
  readonly #owed: OwedApply
  readonly #log: Logger
  readonly #clock: Clock
  readonly #minIntervalMs: number
  #lastApplyAt = -Infinity

  private constructor(format: Format, minion: DnsmasqMinion, owed: OwedApply, opts: PublisherOptions) {
    this.#format = format
    this.#minion = minion
    this.#owed = owed
    this.#log = opts.logger
    this.#clock = opts.clock
    this.#minIntervalMs = opts.config.reloadMinIntervalMs
  }

  static async open(opts: PublisherOptions): Promise<LocalPublisher> {
    const format = await FORMATS[opts.config.format].open(opts.config)
    const owed = await OwedApply.open(`${opts.config.files.state}.apply-owed`, opts.clock(), format.legacyOwedMarker)
    if (owed.owed !== null)
      opts.logger.info(
        { owedSince: new Date(owed.owed.since).toISOString() },
        'an apply owed before saltmasq stopped will be made at the next sync',
      )
    const unowned = format.unownedFiles
    if (unowned.length > 0)
      opts.logger.warn(
        { files: unowned.slice(0, 20), count: unowned.length },
        'files saltmasq does not own are in its hosts directories; they are left alone',
      )
    return new LocalPublisher(format, new DnsmasqMinion(opts.client, opts.config.dnsmasq), owed, opts)
  }

  /** Nothing to remember: the files on disk are what the next publish compares with. */
  remember(): void {}

  get dnsmasqMinions(): MinionStatus[] {
    return []
  }

  /** The DHCP reservations dnsmasq was last given, and where they are (to rebuild a lost ledger). */
  async readBack(): Promise<ReadBack> {
    return await this.#format.readBack()
  }

  /** The apply dnsmasq is owed, if any, and whether it is only waiting for its paced turn. */
  get owed(): (Owed & { paced: boolean }) | null {
    const owed = this.#owed.owed
    if (owed === null) return null
    return { ...owed, paced: this.#format.pacedApply && this.#dueInMs() > 0 }
  }

  #dueInMs(): number {
    return this.#lastApplyAt + this.#minIntervalMs - this.#clock()
  }

  /** What publishing `reservations` would change, line by line, and whether dnsmasq would be told; writes nothing. */
  async preview(reservations: readonly DnsmasqHost[]): Promise<{ files: FileLines[], apply: ApplyNeed }> {
    const pending = await this.#format.prepare(reservations)
    const needs = [pending.need, this.#owed.owed?.need ?? 'none']
    const apply: ApplyNeed = needs.includes('checked-apply')
      ? 'checked-apply'
      : needs.includes('apply')
        ? 'apply'
        : 'none'
    return { files: pending.lines(), apply }
  }

  async publish(reservations: readonly DnsmasqHost[]): Promise<Published> {
    const started = performance.now()
    const pending = await this.#format.prepare(reservations)
    const prepareMs = msSince(started)
    const writeStarted = performance.now()
    const owedBefore = this.#owed.owed
    if (pending.need !== 'none') await this.#owed.record(pending.need, this.#clock())
    const { undo, ...change } = await pending.commit()
    const out: Published = {
      ...change,
      applied: false,
      applyDueInMs: null,
      unownedFiles: this.#format.unownedFiles,
      dnsmasqMinions: [],
      bytesSent: 0,
      prepareMs,
      writeMs: msSince(writeStarted),
      applyMs: 0,
    }
    if (out.blocked.length > 0)
      this.#log.warn(
        { minions: out.blocked },
        'reservations not published: a file saltmasq does not own has their name',
      )

    const owed = this.#owed.owed
    if (owed === null) return out
    if (this.#format.pacedApply && this.#dueInMs() > 0) return { ...out, applyDueInMs: Math.ceil(this.#dueInMs()) }

    const applyStarted = performance.now()
    if (owed.need === 'checked-apply') {
      try {
        await this.#minion.check()
      } catch (err) {
        await undo()
        // What was owed before this change (already checked) stays owed.
        if (owedBefore === null) await this.#owed.clear()
        if ((err as { code?: string }).code === 'SALTMASQ_APPLY_FAILED')
          throw new errors.SALTMASQ_DNSMASQ_CHECK_FAILED(this.#minion.checks ?? 'check', (err as Error).message)
        throw err
      }
    }
    await this.#minion.apply()
    this.#lastApplyAt = this.#clock()
    await this.#owed.clear()
    return { ...out, applied: true, applyMs: msSince(applyStarted) }
  }

  async release(removed: readonly DnsmasqHost[]): Promise<Released> {
    return await releaseLeases(this.#minion, removed, this.#log)
  }
}
