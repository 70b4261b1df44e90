// salt-api's login token: reused until shortly before it expires, renewed on a 401 (sessions die
// when the master restarts), shared by concurrent callers. A refused login pauses further logins,
// doubling, since a wrong password retried every few seconds locks the account under pam_faillock.
// The password and the token never reach a log line or an error message.
import type { Logger } from 'pino'
import { errors } from '../errors.js'
import { raiseForStatus, type SaltTransport } from './transport.js'

export interface Credentials {
  username: string
  password: string
  eauth: string
}

export interface Token {
  value: string
  /** epoch ms after which we log in again rather than risk a 401 */
  renewAt: number
}

/** Renew this long before salt-api's own expiry. */
const RENEW_MARGIN_MS = 60_000
/** After a refused login, the next try waits this long, doubling up to the cap. */
export const LOGIN_RETRY_MS = 60_000
export const LOGIN_RETRY_MAX_MS = 15 * 60_000

export class SaltSession {
  readonly #transport: SaltTransport
  readonly #credentials: Credentials
  readonly #logger: Logger
  readonly #now: () => number
  readonly #observe: <T>(call: () => Promise<T>) => Promise<T>
  #token: Token | null = null
  #login: Promise<Token> | null = null
  /** Logins refused in a row, and when the next may be tried. */
  #refusedLogins = 0
  #nextLoginAt = 0

  constructor(opts: {
    transport: SaltTransport
    credentials: Credentials
    logger: Logger
    now: () => number
    /** Wraps each login round trip (metrics). */
    observe: <T>(call: () => Promise<T>) => Promise<T>
  }) {
    this.#transport = opts.transport
    this.#credentials = opts.credentials
    this.#logger = opts.logger
    this.#now = opts.now
    this.#observe = opts.observe
  }

  /** The current token, logging in first when there is none or it is about to expire. */
  async current(): Promise<Token> {
    if (this.#token !== null && this.#now() < this.#token.renewAt) return this.#token
    this.#login ??= this.#doLogin().finally(() => {
      this.#login = null
    })
    this.#token = await this.#login
    return this.#token
  }

  /** salt-api refused this token (401): the next call logs in again. */
  forget(token?: string): void {
    if (token === undefined || this.#token?.value === token) this.#token = null
  }

  async #doLogin(): Promise<Token> {
    const waitMs = this.#nextLoginAt - this.#now()
    if (waitMs > 0) throw new errors.SALTMASQ_SALT_AUTH_PAUSED(Math.ceil(waitMs / 1000))
    try {
      const token = await this.#observe(async () => await this.#loginOnce())
      if (this.#refusedLogins > 0) this.#logger.info('salt-api accepts the login again')
      this.#refusedLogins = 0
      return token
    } catch (err) {
      if ((err as { code?: string }).code === 'SALTMASQ_SALT_AUTH_FAILED') this.#pause(err as Error)
      throw err
    }
  }

  #pause(err: Error): void {
    const pauseMs = Math.min(LOGIN_RETRY_MAX_MS, LOGIN_RETRY_MS * 2 ** this.#refusedLogins)
    this.#nextLoginAt = this.#now() + pauseMs
    if (this.#refusedLogins === 0) {
      this.#logger.error({ retryS: pauseMs / 1000 }, `${err.message}; the next login is tried in ${pauseMs / 1000} s`)
    }
    this.#refusedLogins++
  }

  async #loginOnce(): Promise<Token> {
    const { username, password, eauth } = this.#credentials
    const res = await this.#transport.post('/login', { username, password, eauth }, {})
    if (res.status === 401 || res.status === 403) throw new errors.SALTMASQ_SALT_AUTH_FAILED(res.status)
    raiseForStatus(res)
    const value = res.headers['x-auth-token']
    const body = (res.json as { return?: Array<{ token?: unknown, expire?: unknown }> } | undefined)?.return?.[0]
    const token = typeof value === 'string' ? value : body?.token
    if (typeof token !== 'string' || token === '')
      throw new errors.SALTMASQ_SALT_BAD_RESPONSE('login answered without a token')
    const expireMs = typeof body?.expire === 'number' ? body.expire * 1000 : this.#now() + 10 * 60_000
    this.#logger.debug({ user: username, eauth }, 'logged in to salt-api')
    return { value: token, renewAt: Math.max(this.#now(), expireMs - RENEW_MARGIN_MS) }
  }
}
