// The dnsmasq host as saltmasq reaches it: through salt-api's local client on DNSMASQ_MINION.
// Three things are done there: apply (make dnsmasq take the files in), check (dnsmasq --test,
// conf format) and release a destroyed machine's lease.
import type { Logger } from 'pino'
import type { Config } from '../config/index.js'
import type { DnsmasqHost } from '../ledger/reservation.js'
import { callOnMinions, type LocalClient } from '../salt/local-call.js'

export class DnsmasqMinion {
  readonly #client: LocalClient
  readonly #settings: Config['dnsmasq']

  constructor(client: LocalClient, settings: Config['dnsmasq']) {
    this.#client = client
    this.#settings = settings
  }

  get target(): string {
    return this.#settings.minion
  }

  /**
   * How calls reach the dnsmasq minions. Publishing through Salt may target several, one of
   * which may be down: Salt then waits DNSMASQ_PUBLISH_WAIT_S for it, not its own 5 + 10 s.
   */
  get #callOptions(): { tgtType: string, waitS?: number } {
    return this.#settings.publish === 'salt'
      ? { tgtType: this.#settings.targetType, waitS: this.#settings.publishWaitS }
      : { tgtType: this.#settings.targetType }
  }

  async apply(): Promise<void> {
    await callOnMinions(this.#client, this.#settings.minion, this.#settings.apply, [], this.#callOptions)
  }

  /** The configured check, if any; throws SALTMASQ_APPLY_FAILED when dnsmasq rejects the files. */
  async check(): Promise<void> {
    if (this.#settings.test !== null)
      await callOnMinions(this.#client, this.#settings.minion, this.#settings.test, [], this.#callOptions)
  }

  get checks(): string | null {
    return this.#settings.test?.fun ?? null
  }

  get releasesLeases(): boolean {
    return this.#settings.release !== null
  }

  async releaseLease(ip: string): Promise<void> {
    if (this.#settings.release !== null)
      await callOnMinions(this.#client, this.#settings.minion, this.#settings.release, [ip], this.#callOptions)
  }
}

/**
 * Frees the leases of destroyed machines on every dnsmasq minion, so their IP and name are free
 * at once. The reservation is already gone; a failure here is reported, never fatal.
 */
export async function releaseLeases(
  minion: DnsmasqMinion,
  removed: readonly DnsmasqHost[],
  log: Logger,
): Promise<{ released: string[], releaseFailures: Array<{ minionId: string, ip: string, reason: string }> }> {
  const out = {
    released: [] as string[],
    releaseFailures: [] as Array<{ minionId: string, ip: string, reason: string }>,
  }
  if (!minion.releasesLeases) return out
  for (const r of removed) {
    try {
      await minion.releaseLease(r.ip)
      out.released.push(r.ip)
    } catch (err) {
      log.warn({ err, minionId: r.minionId, ip: r.ip }, 'could not release the lease of a destroyed machine')
      out.releaseFailures.push({ minionId: r.minionId, ip: r.ip, reason: (err as Error).message })
    }
  }
  return out
}
