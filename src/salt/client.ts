// The salt-api calls saltmasq makes, and what their answers mean. HTTP is transport.ts's job,
// the login token session.ts's, retries retry.ts's; this file only builds lowstate and decodes.
// Over 200 lines: one method per salt-api call saltmasq makes, with what its answer means.
import type { Dispatcher } from 'undici'
import type { Logger } from 'pino'
import { errors } from '../errors.js'
import { withRetries, type RetryPolicy } from './retry.js'
import { SaltSession, type Token } from './session.js'
import { raiseForStatus, SaltTransport, type TransportOptions } from './transport.js'

export { DEFAULT_MAX_RESPONSE_BYTES } from './transport.js'
export { LOGIN_RETRY_MAX_MS, LOGIN_RETRY_MS } from './session.js'

export interface SaltClientOptions extends Omit<TransportOptions, 'logger'> {
  username: string
  password: string
  eauth: string
  /** Retries of idempotent calls (mine reads, mine.update) after a transient failure. */
  retries?: number
  retryBaseMs?: number
  logger: Logger
  now?: () => number
  /** Told of every salt-api round trip once it ends (metrics). */
  onCall?: (call: SaltCall) => void
}

/** One salt-api round trip: `outcome` is 'ok' or the error's code. */
export interface SaltCall {
  client: string
  fun: string
  outcome: string
  seconds: number
}

export type Lowstate = Record<string, unknown> & { client: 'local' | 'runner' | 'wheel', fun: string }

/** How a local call is targeted (Salt's tgt_type; glob when unset) and its keyword arguments. */
export interface LocalOptions {
  tgtType?: string
  kwarg?: Record<string, unknown>
  /**
   * Seconds the master waits for answers, then again for minions still running the job (Salt's
   * timeout and gather_job_timeout; unset: the master's). A minion that is down costs the call both.
   */
  waitS?: number
  /** This call's own deadline (a large publish), instead of SALT_API_TIMEOUT_MS. */
  timeoutMs?: number
}

/** The minion ids whose key the master has accepted (pending, rejected and denied keys are not). */
export type AcceptedKeys = ReadonlySet<string>

export class SaltClient {
  readonly #opts: SaltClientOptions
  readonly #transport: SaltTransport
  readonly #session: SaltSession
  readonly #retry: RetryPolicy

  constructor(opts: SaltClientOptions) {
    this.#opts = opts
    this.#transport = new SaltTransport(opts)
    this.#session = new SaltSession({
      transport: this.#transport,
      credentials: { username: opts.username, password: opts.password, eauth: opts.eauth },
      logger: opts.logger,
      now: opts.now ?? Date.now,
      observe: async (call) => await this.#observed('login', 'login', call),
    })
    this.#retry = { retries: opts.retries ?? 3, baseMs: opts.retryBaseMs ?? 250, logger: opts.logger }
  }

  async close(): Promise<void> {
    await this.#transport.close()
  }

  /** The event stream's HTTP side: its own connection and its GET /events. */
  get transport(): SaltTransport {
    return this.#transport
  }

  /** A connection of its own for the long-lived event stream. */
  openStreamConnection(): Dispatcher {
    return this.#transport.streamConnection()
  }

  /**
   * One authenticated round trip that runs nothing (an empty lowstate list): proves salt-api is
   * up, the master reachable from it and the session accepted, without a new session per probe.
   * Not retried: the readiness monitor probes again on its own schedule.
   */
  async probe(): Promise<void> {
    await this.#run([])
  }

  async mineGet(target: string, fun: string): Promise<unknown> {
    const chunk: Lowstate = { client: 'runner', fun: 'mine.get', arg: [target, fun] }
    return await withRetries('mine.get', this.#retry, async () => await this.#one(chunk))
  }

  /** Asks these minions to send their mine data now (a new minion's may be an hour away). */
  async mineUpdate(minionIds: readonly string[]): Promise<unknown> {
    const chunk: Lowstate = {
      client: 'runner',
      fun: 'mine.update',
      kwarg: { tgt: minionIds.join(','), tgt_type: 'list' },
    }
    return await withRetries('mine.update', this.#retry, async () => await this.#one(chunk))
  }

  /**
   * The minions whose key the master has accepted, through the wheel client's key.list_all.
   * Only an accepted key is Salt's word that a machine exists: anyone who reaches the master's
   * port can file a pending key under any id. salt-cloud's destroy deletes the key.
   */
  async keyListAll(): Promise<AcceptedKeys> {
    const chunk: Lowstate = { client: 'wheel', fun: 'key.list_all' }
    const ret = await withRetries('key.list_all', this.#retry, async () => await this.#one(chunk))
    // rest_cherrypy hands back the wheel client's full return: {tag, data: {return: {...}, success}}.
    const data = (ret as { data?: { return?: unknown, success?: unknown } } | undefined)?.data
    const lists = data?.return
    if (data?.success === false || typeof lists !== 'object' || lists === null) {
      throw new errors.SALTMASQ_SALT_BAD_RESPONSE(`wheel key.list_all returned ${JSON.stringify(ret).slice(0, 200)}`)
    }
    const accepted = (lists as Record<string, unknown>).minions
    if (!Array.isArray(accepted)) {
      throw new errors.SALTMASQ_SALT_BAD_RESPONSE('wheel key.list_all returned no list of accepted minions')
    }
    return new Set(accepted.filter((id): id is string => typeof id === 'string'))
  }

  /** The session token (logging in if needed) and when it is renewed: the event stream authenticates with it. */
  async session(): Promise<Token> {
    return await this.#session.current()
  }

  /** salt-api refused this token (401): the next call logs in again. */
  forgetSession(token: string): void {
    this.#session.forget(token)
  }

  /**
   * Runs an execution function through the local client: `{minion id: return}` of the minions
   * that answered. Not retried: a restart is not idempotent, and a failed apply is owed to the
   * next sync anyway.
   */
  async local(
    target: string,
    fun: string,
    args: readonly string[],
    opts: LocalOptions = {},
  ): Promise<Record<string, unknown>> {
    const ret = await this.#one(
      {
        client: 'local',
        tgt: target,
        fun,
        arg: [...args],
        ...(opts.tgtType === undefined || opts.tgtType === 'glob' ? {} : { tgt_type: opts.tgtType }),
        ...(opts.kwarg === undefined ? {} : { kwarg: opts.kwarg }),
        ...(opts.waitS === undefined ? {} : { timeout: opts.waitS, gather_job_timeout: opts.waitS }),
      },
      opts.timeoutMs,
    )
    if (typeof ret !== 'object' || ret === null || Array.isArray(ret)) {
      throw new errors.SALTMASQ_SALT_BAD_RESPONSE(`local ${fun} returned ${JSON.stringify(ret).slice(0, 200)}`)
    }
    return ret as Record<string, unknown>
  }

  async #one(chunk: Lowstate, timeoutMs?: number): Promise<unknown> {
    const [ret] = await this.#run([chunk], timeoutMs)
    return ret
  }

  async #run(chunks: Lowstate[], timeoutMs?: number): Promise<unknown[]> {
    const [client, fun] = chunks.length === 0 ? ['none', 'probe'] : [chunks[0]!.client, chunks[0]!.fun]
    return await this.#observed(client, fun, async () => await this.#runOnce(chunks, timeoutMs))
  }

  /** Runs one round trip, telling `onCall` how it went. */
  async #observed<T>(client: string, fun: string, call: () => Promise<T>): Promise<T> {
    const onCall = this.#opts.onCall
    if (onCall === undefined) return await call()
    const started = performance.now()
    let outcome = 'ok'
    try {
      return await call()
    } catch (err) {
      outcome = (err as { code?: string }).code ?? 'error'
      throw err
    } finally {
      onCall({ client, fun, outcome, seconds: (performance.now() - started) / 1000 })
    }
  }

  /** POST / with the session's token; a 401 logs in again once (the master restarted). */
  async #runOnce(chunks: Lowstate[], timeoutMs?: number): Promise<unknown[]> {
    const what = chunks.map((c) => `${c.client} ${c.fun}`).join(', ') || 'an empty call'
    let token = await this.#session.current()
    let res = await this.#transport.post('/', chunks, { 'x-auth-token': token.value }, timeoutMs)
    if (res.status === 401) {
      this.#opts.logger.info({ call: what }, 'salt-api session rejected; logging in again')
      this.#session.forget()
      token = await this.#session.current()
      res = await this.#transport.post('/', chunks, { 'x-auth-token': token.value }, timeoutMs)
      if (res.status === 401) throw new errors.SALTMASQ_SALT_FORBIDDEN(what)
    }
    raiseForStatus(res)
    const ret = (res.json as { return?: unknown } | undefined)?.return
    if (!Array.isArray(ret) || ret.length !== chunks.length) {
      throw new errors.SALTMASQ_SALT_BAD_RESPONSE(`expected {"return": [${chunks.length} result(s)]} for ${what}`)
    }
    return ret
  }
}
