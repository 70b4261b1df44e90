// Reads which minions the master still has keys for, for the ledger's key-gone rule. A refused
// or failing key list is said once (with the fix), not on every sync, and the sync carries on
// without it: no reservation is released on a list saltmasq could not read.
import type { Logger } from 'pino'
import type { KeyLists, SaltClient } from '../salt/client.js'

export interface KeyListRead {
  keys: KeyLists | null
  /** Why there is no key list, or null when it was read (or the rule is off). */
  problem: string | null
}

export class KeyWatch {
  readonly #client: Pick<SaltClient, 'keyListAll'>
  readonly #log: Logger
  readonly #enabled: boolean
  #failing: string | null = null

  constructor (client: Pick<SaltClient, 'keyListAll'>, log: Logger, enabled: boolean) {
    this.#client = client
    this.#log = log
    this.#enabled = enabled
  }

  async read (): Promise<KeyListRead> {
    if (!this.#enabled) return { keys: null, problem: null }
    try {
      const keys = await this.#client.keyListAll()
      if (this.#failing !== null) this.#log.info('the key list reads again: destroyed machines whose event was lost are found again')
      this.#failing = null
      return { keys, problem: null }
    } catch (err) {
      const e = err as { code?: string, message: string }
      const problem = `${e.message}`
      if (this.#failing !== e.code) {
        this.#log.warn({ code: e.code, err: e.message }, "cannot read the master's key list (wheel key.list_all): machines destroyed while their event was lost are not found until it works. Add wheel to netapi_enable_clients and \"'@wheel': [key.list_all]\" to the eauth user, or set DESTROY_WHEN_KEY_GONE_S=0")
        this.#failing = e.code ?? 'error'
      }
      return { keys: null, problem }
    }
  }
}
