// Hands rendered files to dnsmasq. Writes each file atomically and only when its content
// changed; in conf format checks the result with `dnsmasq --test` on the dnsmasq minion before
// a restart, putting the previous file back if dnsmasq rejects it; then applies (reload or
// restart) through salt-api — only when something changed, or an earlier apply failed.
// In hostsdir format dnsmasq's inotify picks up new and changed files by itself, so nothing is
// applied for them; only a dhcp-hostsdir file deleted or changed (dnsmasq keeps the old record
// until SIGHUP) owes a reload, and those are batched to one per RELOAD_MIN_INTERVAL_S.
// After a destroy, frees the machine's DHCP lease at once. An apply we cannot confirm is not an
// apply: a target no minion answers for, or a function that reports failure, is an error.
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { Config, SaltFunction } from '../config.js'
import { errors } from '../errors.js'
import type { Reservation } from '../reservations/ledger.js'
import { HostsDirectory } from '../reservations/hosts-dir.js'
import type { FileRole, RenderedEntries, RenderedFiles } from '../reservations/render.js'
import { readIfExists, restore, writeFileAtomic, writeIfChanged, type WriteOutcome } from '../reservations/store.js'
import type { SaltClient } from '../salt/client.js'
import { localFailure } from '../salt/results.js'

type LocalClient = Pick<SaltClient, 'local'>

/** Runs `call` on the target and returns the ids of the minions that ran it successfully. */
export async function runOnDnsmasqMinion (client: LocalClient, target: string, call: SaltFunction, leadingArgs: readonly string[] = []): Promise<string[]> {
  const results = await client.local(target, call.fun, [...leadingArgs, ...call.args])
  const minions = Object.keys(results).sort()
  if (minions.length === 0) throw new errors.ApplyNoMinion(target, call.fun)
  for (const minion of minions) {
    const failure = localFailure(results[minion])
    if (failure !== null) throw new errors.ApplyFailed(call.fun, minion, failure)
  }
  return minions
}

export interface Published {
  /** Files written or removed; in hostsdir format, the directories that changed. */
  filesChanged: string[]
  applied: boolean
  writeMs: number
  applyMs: number
  /** hostsdir format: a reload is owed and due in this many ms (the caller syncs again then). */
  reloadDueInMs: number | null
  /** hostsdir format: entry files written and removed in this publish. */
  entriesWritten: number
  entriesRemoved: number
  /** hostsdir format: files in the directories that saltmasq does not own (left alone). */
  unownedFiles: string[]
  /** hostsdir format: reservations not published because a file saltmasq does not own holds their name. */
  blocked: string[]
}

const SINGLE_FILE = { reloadDueInMs: null, entriesWritten: 0, entriesRemoved: 0, unownedFiles: [], blocked: [] }

function since (start: number): number {
  return Math.round((performance.now() - start) * 10) / 10
}

export interface Released {
  released: string[]
  releaseFailures: Array<{ minionId: string, ip: string, reason: string }>
}

interface Dirs { dhcp: HostsDirectory, dns: HostsDirectory }

export class DnsmasqPublisher {
  readonly #config: Config
  readonly #client: LocalClient
  readonly #log: Logger
  readonly #dirs: Dirs | null
  /** Files changed but the apply failed: the next publish applies even if nothing changes. */
  #applyOwed = false
  /** hostsdir format: when the last reload was sent (performance.now() ms). */
  #lastReloadAt = -Infinity

  private constructor (config: Config, client: LocalClient, log: Logger, dirs: Dirs | null) {
    this.#config = config
    this.#client = client
    this.#log = log
    this.#dirs = dirs
  }

  /**
   * In hostsdir format, reads both directories once: from then on only changes touch the disk.
   * A reload owed when saltmasq last stopped (its marker file is there) is still owed.
   */
  static async open (config: Config, client: LocalClient, log: Logger): Promise<DnsmasqPublisher> {
    if (config.format !== 'hostsdir') return new DnsmasqPublisher(config, client, log, null)
    const dirs = {
      dhcp: await HostsDirectory.open(config.files.dhcpHostsDir),
      dns: await HostsDirectory.open(config.files.dnsHostsDir),
    }
    const publisher = new DnsmasqPublisher(config, client, log, dirs)
    if (await readIfExists(publisher.#owedMarker) !== null) {
      publisher.#applyOwed = true
      log.info('a reload owed before saltmasq stopped will be sent at the next sync')
    }
    const unowned = publisher.unownedFiles
    if (unowned.length > 0) log.warn({ files: unowned.slice(0, 20), count: unowned.length }, 'files saltmasq does not own are in its hosts directories; they are left alone')
    return publisher
  }

  /** hostsdir format: present while a reload is owed (a dotfile: dnsmasq skips it). */
  get #owedMarker (): string {
    return join(this.#config.files.dhcpHostsDir, '.saltmasq-reload-owed')
  }

  /** The DHCP reservations dnsmasq was last given, as one text, and where they are (to rebuild a lost ledger). */
  async publishedDhcpHosts (): Promise<{ source: string, text: string | null }> {
    const { format, files } = this.#config
    if (this.#dirs !== null) return { source: files.dhcpHostsDir, text: [...this.#dirs.dhcp.owned.values()].join('') }
    const source = format === 'conf' ? files.conf : files.dhcpHosts
    return { source, text: await readIfExists(source) }
  }

  get unownedFiles (): string[] {
    if (this.#dirs === null) return []
    return [
      ...this.#dirs.dhcp.unowned.map((name) => join(this.#dirs!.dhcp.path, name)),
      ...this.#dirs.dns.unowned.map((name) => join(this.#dirs!.dns.path, name)),
    ]
  }

  /**
   * hostsdir format: new and changed files are live once renamed into place (inotify). A
   * dhcp-hostsdir file removed or replaced leaves its old record in dnsmasq until SIGHUP: that
   * reload is sent at once if none was sent in the last RELOAD_MIN_INTERVAL_S, else it is owed
   * and `reloadDueInMs` says when to sync again.
   */
  async publishEntries (entries: RenderedEntries): Promise<Published> {
    const dirs = this.#dirs
    if (dirs === null) throw new Error('publishEntries needs RESERVATIONS_FORMAT=hostsdir')
    const started = performance.now()
    const plan = dirs.dhcp.plan(entries.dhcpHosts)
    if ((plan.gone.length > 0 || plan.replaced.size > 0) && !this.#applyOwed) {
      // Recorded on disk before any record is dropped: a crash cannot lose the reload.
      await writeFileAtomic(this.#owedMarker, `${new Date().toISOString()}\n`)
      this.#applyOwed = true
    }
    const dhcp = await dirs.dhcp.apply(plan)
    const dns = await dirs.dns.apply(entries.dnsHosts)
    const filesChanged = [[dirs.dhcp, dhcp], [dirs.dns, dns]] as const
    const out: Published = {
      filesChanged: filesChanged.filter(([, c]) => c.created.length + c.replaced.size + c.removed.size > 0).map(([dir]) => dir.path),
      applied: false,
      writeMs: since(started),
      applyMs: 0,
      reloadDueInMs: null,
      entriesWritten: dhcp.created.length + dhcp.replaced.size + dns.created.length + dns.replaced.size,
      entriesRemoved: dhcp.removed.size + dns.removed.size,
      unownedFiles: this.unownedFiles,
      blocked: [...new Set([...dhcp.blocked, ...dns.blocked])].sort(),
    }
    if (out.blocked.length > 0) this.#log.warn({ minions: out.blocked }, 'reservations not published: a file saltmasq does not own has their name')
    if (!this.#applyOwed) return out
    const waitMs = this.#lastReloadAt + this.#config.reloadMinIntervalMs - performance.now()
    if (waitMs > 0) {
      out.reloadDueInMs = Math.ceil(waitMs)
      return out
    }
    const applyStarted = performance.now()
    await runOnDnsmasqMinion(this.#client, this.#config.dnsmasq.minion, this.#config.dnsmasq.apply)
    this.#lastReloadAt = performance.now()
    this.#applyOwed = false
    await rm(this.#owedMarker, { force: true })
    return { ...out, applied: true, applyMs: since(applyStarted) }
  }

  async publish (rendered: RenderedFiles): Promise<Published> {
    const started = performance.now()
    const written: Array<[string, WriteOutcome]> = []
    for (const [role, content] of Object.entries(rendered) as Array<[FileRole, string]>) {
      const path = this.#config.files[role]
      written.push([path, await writeIfChanged(path, content)])
    }
    const filesChanged = written.filter(([, o]) => o.changed).map(([path]) => path)
    if (filesChanged.length > 0) this.#applyOwed = true
    const writeMs = since(started)
    if (!this.#applyOwed) return { ...SINGLE_FILE, filesChanged, applied: false, writeMs, applyMs: 0 }
    const applyStarted = performance.now()

    const { minion, apply, test } = this.#config.dnsmasq
    if (test !== null && filesChanged.length > 0) {
      try {
        await runOnDnsmasqMinion(this.#client, minion, test)
      } catch (err) {
        for (const [path, outcome] of written) await restore(path, outcome)
        this.#applyOwed = false
        if ((err as { code?: string }).code === 'SALTMASQ_APPLY_FAILED') throw new errors.CheckFailed(test.fun, (err as Error).message)
        throw err
      }
    }
    await runOnDnsmasqMinion(this.#client, minion, apply)
    this.#applyOwed = false
    return { ...SINGLE_FILE, filesChanged, applied: true, writeMs, applyMs: since(applyStarted) }
  }

  /**
   * Frees the leases of destroyed machines so their IP and name are free at once. The
   * reservation is already gone; a failure here is reported, never fatal.
   */
  async release (removed: readonly Reservation[]): Promise<Released> {
    const out: Released = { released: [], releaseFailures: [] }
    const { minion, release } = this.#config.dnsmasq
    if (release === null) return out
    for (const r of removed) {
      try {
        await runOnDnsmasqMinion(this.#client, minion, release, [r.ip])
        out.released.push(r.ip)
      } catch (err) {
        this.#log.warn({ err, minionId: r.minionId, ip: r.ip }, 'could not release the lease of a destroyed machine')
        out.releaseFailures.push({ minionId: r.minionId, ip: r.ip, reason: (err as Error).message })
      }
    }
    return out
  }
}
