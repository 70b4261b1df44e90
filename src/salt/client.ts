// The only code that speaks to salt-api (rest_cherrypy). It owns the login token: reused until
// shortly before it expires, renewed once on any 401 (sessions die when the master restarts).
// Every call has a timeout; every failure is a coded error. The password and the token never
// reach a log line or an error message.
// Over 250 lines: transport, session (with the login pause), retries and decoding live together
// here for now; issue #20 splits transport and session along that seam.
import { Client, Pool, type Dispatcher } from 'undici'
import type { Logger } from 'pino'
import { errors, isTransientSaltError } from '../errors.js'
import { backoffDelay, sleep } from '../util/backoff.js'

export interface SaltClientOptions {
  url: string
  username: string
  password: string
  eauth: string
  timeoutMs: number
  /** PEM text of the CA that signed salt-api's certificate. */
  ca?: string
  /** Accept any certificate (SALT_API_INSECURE): only ever set explicitly. */
  insecure?: boolean
  /** The largest answer read from salt-api (a mine of 100,000 minions is tens of MB); past it the call fails. */
  maxResponseBytes?: number
  /** Retries of idempotent calls (mine reads, mine.update) after a transient failure. */
  retries?: number
  retryBaseMs?: number
  logger: Logger
  /** Tests pass a MockAgent; otherwise a keep-alive pool to salt-api's origin. */
  dispatcher?: Dispatcher
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
   * timeout and gather_job_timeout; unset: the master's, 5 s and 10 s). A minion that is down
   * costs the call both.
   */
  waitS?: number
  /** This call's own deadline (a large publish), instead of SALT_API_TIMEOUT_MS. */
  timeoutMs?: number
}

/** The minion ids whose key the master has accepted (pending, rejected and denied keys are not). */
export type AcceptedKeys = ReadonlySet<string>

interface Token {
  value: string
  /** epoch ms after which we log in again rather than risk a 401 */
  renewAt: number
}

/** Renew this long before salt-api's own expiry. */
const RENEW_MARGIN_MS = 60_000
/**
 * After a refused login, the next try waits this long, doubling up to the cap: a wrong password
 * retried every few seconds locks the account wherever pam_faillock is on.
 */
export const LOGIN_RETRY_MS = 60_000
export const LOGIN_RETRY_MAX_MS = 15 * 60_000

function plainText(body: string): string {
  return body.replace(/<style[\s\S]*?<\/style>/gi, ' ').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300)
}

/** What the mine, the largest answer, may come to: the mine is what minions say, so it is bounded. */
export const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'])

/** A network-level failure (no HTTP answer) as one of our coded errors. */
function networkError(err: unknown, timeoutMs: number): Error {
  const e = err as { name?: string, code?: string, message?: string, cause?: { code?: string } }
  const code = e.code ?? e.cause?.code
  if ((code !== undefined && TIMEOUT_CODES.has(code)) || e.name === 'TimeoutError' || e.name === 'AbortError') return new errors.SaltTimeout(timeoutMs)
  if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') return new errors.SaltBadResponse('the answer is larger than SALT_API_MAX_RESPONSE_MB')
  return new errors.SaltUnreachable(code ?? e.message ?? String(err))
}

export class SaltClient {
  readonly #opts: SaltClientOptions
  readonly #origin: string
  readonly #basePath: string
  readonly #dispatcher: Dispatcher
  readonly #ownsDispatcher: boolean
  readonly #now: () => number
  #token: Token | null = null
  #login: Promise<Token> | null = null
  /** Logins refused in a row, and when the next may be tried. */
  #refusedLogins = 0
  #nextLoginAt = 0

  constructor(opts: SaltClientOptions) {
    this.#opts = opts
    const url = new URL(opts.url)
    this.#origin = url.origin
    this.#basePath = url.pathname.replace(/\/+$/, '')
    this.#now = opts.now ?? Date.now
    this.#ownsDispatcher = opts.dispatcher === undefined
    this.#dispatcher = opts.dispatcher ?? new Pool(this.#origin, {
      connections: 4,
      maxResponseSize: opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      connect: {
        timeout: opts.timeoutMs,
        ...(opts.ca === undefined ? {} : { ca: opts.ca }),
        ...(opts.insecure === true ? { rejectUnauthorized: false } : {}),
      },
    })
  }

  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close()
  }

  /**
   * A connection of its own for a long-lived stream (GET /events), with the same TLS settings
   * and TCP keepalive, so a peer that vanished is noticed even while the bus is quiet.
   */
  openStreamConnection(): Dispatcher {
    if (!this.#ownsDispatcher) return this.#dispatcher
    const opts = this.#opts
    return new Client(this.#origin, {
      headersTimeout: opts.timeoutMs,
      bodyTimeout: 0,
      connect: {
        timeout: opts.timeoutMs,
        keepAlive: true,
        keepAliveInitialDelay: 30_000,
        ...(opts.ca === undefined ? {} : { ca: opts.ca }),
        ...(opts.insecure === true ? { rejectUnauthorized: false } : {}),
      },
    })
  }

  /**
   * One authenticated round trip that runs nothing (an empty lowstate list): proves salt-api is
   * up, the master is reachable from it and our session is accepted, without creating a new
   * session per probe. Not retried: the readiness monitor probes again on its own schedule.
   */
  async probe(): Promise<void> {
    await this.#run([])
  }

  async mineGet(target: string, fun: string): Promise<unknown> {
    return await this.#retrying('mine.get', async () => await this.#one({ client: 'runner', fun: 'mine.get', arg: [target, fun] }))
  }

  /** Asks these minions to send their mine data now (a new minion's may be an hour away). */
  async mineUpdate(minionIds: readonly string[]): Promise<unknown> {
    return await this.#retrying('mine.update', async () => await this.#one({ client: 'runner', fun: 'mine.update', kwarg: { tgt: minionIds.join(','), tgt_type: 'list' } }))
  }

  /**
   * The minions whose key the master has accepted, through the wheel client's key.list_all.
   * Only an accepted key is Salt's word that a machine exists: anyone who reaches the master's
   * port can file a pending key under any id. salt-cloud's destroy deletes the key.
   */
  async keyListAll(): Promise<AcceptedKeys> {
    const ret = await this.#retrying('key.list_all', async () => await this.#one({ client: 'wheel', fun: 'key.list_all' }))
    // rest_cherrypy hands back the wheel client's full return: {tag, data: {return: {...}, success}}.
    const data = (ret as { data?: { return?: unknown, success?: unknown } } | undefined)?.data
    const lists = data?.return
    if (data?.success === false || typeof lists !== 'object' || lists === null) {
      throw new errors.SaltBadResponse(`wheel key.list_all returned ${JSON.stringify(ret).slice(0, 200)}`)
    }
    const accepted = (lists as Record<string, unknown>).minions
    if (!Array.isArray(accepted)) throw new errors.SaltBadResponse('wheel key.list_all returned no list of accepted minions')
    const ids = new Set<string>()
    for (const id of accepted) if (typeof id === 'string') ids.add(id)
    return ids
  }

  /** The session token (logging in if needed) and when saltmasq means to renew it (epoch ms): the event stream authenticates with it. */
  async session(): Promise<{ token: string, renewAt: number }> {
    const token = await this.#currentToken()
    return { token: token.value, renewAt: token.renewAt }
  }

  /** salt-api refused this token (401): the next call logs in again. */
  forgetSession(token: string): void {
    if (this.#token?.value === token) this.#token = null
  }

  /** Where salt-api is: origin and base path (the event stream opens its own connection there). */
  get endpoint(): { origin: string, basePath: string } {
    return { origin: this.#origin, basePath: this.#basePath }
  }

  /**
   * Runs an execution function through the local client: `{minion id: return}` of the minions
   * that answered. Not retried here: a restart is not idempotent, and a failed apply is owed
   * to the next sync anyway.
   */
  async local(target: string, fun: string, args: readonly string[], opts: LocalOptions = {}): Promise<Record<string, unknown>> {
    const ret = await this.#one({
      client: 'local',
      tgt: target,
      fun,
      arg: [...args],
      ...(opts.tgtType === undefined || opts.tgtType === 'glob' ? {} : { tgt_type: opts.tgtType }),
      ...(opts.kwarg === undefined ? {} : { kwarg: opts.kwarg }),
      ...(opts.waitS === undefined ? {} : { timeout: opts.waitS, gather_job_timeout: opts.waitS }),
    }, opts.timeoutMs)
    if (typeof ret !== 'object' || ret === null || Array.isArray(ret)) {
      throw new errors.SaltBadResponse(`local ${fun} returned ${JSON.stringify(ret).slice(0, 200)}`)
    }
    return ret as Record<string, unknown>
  }

  async #retrying<T>(what: string, call: () => Promise<T>): Promise<T> {
    const retries = this.#opts.retries ?? 3
    for (let attempt = 0; ; attempt++) {
      try {
        return await call()
      } catch (err) {
        if (attempt >= retries || !isTransientSaltError(err)) throw err
        const delay = backoffDelay(attempt, this.#opts.retryBaseMs ?? 250, 5000)
        this.#opts.logger.warn({ call: what, code: (err as { code?: string }).code, attempt: attempt + 1, delayMs: delay }, 'salt-api call failed; retrying')
        await sleep(delay)
      }
    }
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

  async #runOnce(chunks: Lowstate[], timeoutMs = this.#opts.timeoutMs): Promise<unknown[]> {
    const what = chunks.map((c) => `${c.client} ${c.fun}`).join(', ') || 'an empty call'
    let token = await this.#currentToken()
    let res = await this.#post('/', chunks, { 'x-auth-token': token.value }, timeoutMs)
    if (res.status === 401) {
      this.#opts.logger.info({ call: what }, 'salt-api session rejected; logging in again')
      this.#token = null
      token = await this.#currentToken()
      res = await this.#post('/', chunks, { 'x-auth-token': token.value }, timeoutMs)
      if (res.status === 401) throw new errors.SaltForbidden(what)
    }
    this.#raiseForStatus(res)
    const ret = (res.json as { return?: unknown } | undefined)?.return
    if (!Array.isArray(ret) || ret.length !== chunks.length) {
      throw new errors.SaltBadResponse(`expected {"return": [${chunks.length} result(s)]} for ${what}`)
    }
    return ret
  }

  async #currentToken(): Promise<Token> {
    if (this.#token !== null && this.#now() < this.#token.renewAt) return this.#token
    // Concurrent callers share one login rather than racing several.
    this.#login ??= this.#doLogin().finally(() => { this.#login = null })
    this.#token = await this.#login
    return this.#token
  }

  async #doLogin(): Promise<Token> {
    const waitMs = this.#nextLoginAt - this.#now()
    if (waitMs > 0) throw new errors.SaltAuthPaused(Math.ceil(waitMs / 1000))
    try {
      const token = await this.#observed('login', 'login', async () => await this.#loginOnce())
      if (this.#refusedLogins > 0) this.#opts.logger.info('salt-api accepts the login again')
      this.#refusedLogins = 0
      return token
    } catch (err) {
      if ((err as { code?: string }).code === 'SALTMASQ_SALT_AUTH_FAILED') {
        const pauseMs = Math.min(LOGIN_RETRY_MAX_MS, LOGIN_RETRY_MS * 2 ** this.#refusedLogins)
        this.#nextLoginAt = this.#now() + pauseMs
        if (this.#refusedLogins === 0) this.#opts.logger.error({ retryS: pauseMs / 1000 }, `${(err as Error).message}; the next login is tried in ${pauseMs / 1000} s`)
        this.#refusedLogins++
      }
      throw err
    }
  }

  async #loginOnce(): Promise<Token> {
    const { username, password, eauth } = this.#opts
    const res = await this.#post('/login', { username, password, eauth }, {})
    if (res.status === 401 || res.status === 403) throw new errors.SaltAuthFailed(res.status)
    this.#raiseForStatus(res)
    const value = res.headers['x-auth-token']
    const body = (res.json as { return?: Array<{ token?: unknown, expire?: unknown }> } | undefined)?.return?.[0]
    const token = typeof value === 'string' ? value : body?.token
    if (typeof token !== 'string' || token === '') throw new errors.SaltBadResponse('login answered without a token')
    const expireMs = typeof body?.expire === 'number' ? body.expire * 1000 : this.#now() + 10 * 60_000
    this.#opts.logger.debug({ user: username, eauth }, 'logged in to salt-api')
    return { value: token, renewAt: Math.max(this.#now(), expireMs - RENEW_MARGIN_MS) }
  }

  #raiseForStatus(res: { status: number, text: string }): void {
    if (res.status === 200) return
    const detail = plainText(res.text)
    if (res.status === 400) {
      const disabled = /Client disabled[^.<]*/i.exec(detail)
      if (disabled !== null) throw new errors.SaltClientDisabled(disabled[0])
      throw new errors.SaltBadRequest(detail)
    }
    throw Object.assign(new errors.SaltUnavailable(res.status, detail), { upstreamStatus: res.status })
  }

  async #post(path: string, body: unknown, headers: Record<string, string>, timeoutMs = this.#opts.timeoutMs): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, text: string, json: unknown }> {
    const started = this.#now()
    let res: Dispatcher.ResponseData
    try {
      res = await this.#dispatcher.request({
        origin: this.#origin,
        path: `${this.#basePath}${path}`,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'accept': 'application/json', ...headers },
        body: JSON.stringify(body),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        // A hard deadline for the whole exchange: the per-phase timeouts alone let a server
        // that trickles bytes hold a sync for much longer.
        signal: AbortSignal.timeout(timeoutMs),
      })
    } catch (err) {
      throw networkError(err, timeoutMs)
    }
    let text: string
    try {
      text = await res.body.text()
    } catch (err) {
      throw networkError(err, timeoutMs)
    }
    let json: unknown
    if (res.statusCode === 200) {
      try {
        json = JSON.parse(text)
      } catch {
        throw new errors.SaltBadResponse(`${path} answered 200 with a body that is not JSON: ${plainText(text).slice(0, 100)}`)
      }
    }
    this.#opts.logger.debug({ path, status: res.statusCode, ms: this.#now() - started }, 'salt-api call')
    return { status: res.statusCode, headers: res.headers, text, json }
  }
}
