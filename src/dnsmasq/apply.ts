// Hands rendered files to dnsmasq. Writes each file atomically and only when its content
// changed; in conf format checks the result with `dnsmasq --test` on the dnsmasq minion before
// a restart, putting the previous file back if dnsmasq rejects it; then applies (reload or
// restart) through salt-api — only when something changed, or an earlier apply failed. After a
// destroy, frees the machine's DHCP lease at once. An apply we cannot confirm is not an apply:
// a target no minion answers for, or a function that reports failure, is an error.
import type { Logger } from 'pino'
import type { Config, SaltFunction } from '../config.js'
import { errors } from '../errors.js'
import type { Reservation } from '../reservations/ledger.js'
import type { FileRole, RenderedFiles } from '../reservations/render.js'
import { restore, writeIfChanged, type WriteOutcome } from '../reservations/store.js'
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
  filesChanged: string[]
  applied: boolean
  writeMs: number
  applyMs: number
}

function since (start: number): number {
  return Math.round((performance.now() - start) * 10) / 10
}

export interface Released {
  released: string[]
  releaseFailures: Array<{ minionId: string, ip: string, reason: string }>
}

export class DnsmasqPublisher {
  readonly #config: Config
  readonly #client: LocalClient
  readonly #log: Logger
  /** Files changed but the apply failed: the next publish applies even if nothing changes. */
  #applyOwed = false

  constructor (config: Config, client: LocalClient, log: Logger) {
    this.#config = config
    this.#client = client
    this.#log = log
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
    if (!this.#applyOwed) return { filesChanged, applied: false, writeMs, applyMs: 0 }
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
    return { filesChanged, applied: true, writeMs, applyMs: since(applyStarted) }
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
