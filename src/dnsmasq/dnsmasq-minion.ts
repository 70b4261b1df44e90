// The dnsmasq host as saltmasq reaches it: through salt-api's local client on DNSMASQ_MINION.
// Three things are done there: apply (make dnsmasq take the files in), check (dnsmasq --test,
// conf format) and release a destroyed machine's lease.
import type { Config } from '../config.js'
import { callOnMinions, type LocalClient } from '../salt/local-call.js'

export class DnsmasqMinion {
  readonly #client: LocalClient
  readonly #settings: Config['dnsmasq']

  constructor (client: LocalClient, settings: Config['dnsmasq']) {
    this.#client = client
    this.#settings = settings
  }

  get target (): string {
    return this.#settings.minion
  }

  async apply (): Promise<void> {
    await callOnMinions(this.#client, this.#settings.minion, this.#settings.apply)
  }

  /** The configured check, if any; throws SALTMASQ_APPLY_FAILED when dnsmasq rejects the files. */
  async check (): Promise<void> {
    if (this.#settings.check !== null) await callOnMinions(this.#client, this.#settings.minion, this.#settings.check)
  }

  get checks (): string | null {
    return this.#settings.check?.fun ?? null
  }

  get releasesLeases (): boolean {
    return this.#settings.release !== null
  }

  async releaseLease (ip: string): Promise<void> {
    if (this.#settings.release !== null) await callOnMinions(this.#client, this.#settings.minion, this.#settings.release, [ip])
  }
}
