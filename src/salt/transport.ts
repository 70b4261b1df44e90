// HTTP to salt-api and nothing else: one keep-alive pool for calls, a connection of its own for
// the event stream, both with the TLS settings built once. Every failure becomes a coded error.
import { Client, Pool, type Dispatcher } from 'undici'
import type { Logger } from 'pino'
import { errors } from '../errors.js'

export interface TransportOptions {
  url: string
  timeoutMs: number
  /** PEM text of the CA that signed salt-api's certificate. */
  ca?: string
  /** Accept any certificate (SALT_API_INSECURE): only ever set explicitly. */
  insecure?: boolean
  /** The largest answer read from salt-api: the mine is what minions say, so it is bounded. */
  maxResponseBytes?: number
  logger: Logger
  /** Tests pass a MockAgent; otherwise a keep-alive pool to salt-api's origin. */
  dispatcher?: Dispatcher
}

export interface SaltResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  /** The parsed body of a 200 answer; undefined otherwise. */
  json: unknown
}

/** What the mine, the largest answer, may come to. */
export const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'])

/** salt-api's HTML error page as one line of text. */
export function plainText(body: string): string {
  return body
    .replace(/<style[\s\S]*?<\/style>/gi, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 300)
}

/** A network-level failure (no HTTP answer) as one of our coded errors. */
function networkError(err: unknown, timeoutMs: number): Error {
  const e = err as { name?: string, code?: string, message?: string, cause?: { code?: string } }
  const code = e.code ?? e.cause?.code
  const timedOut =
    (code !== undefined && TIMEOUT_CODES.has(code)) || e.name === 'TimeoutError' || e.name === 'AbortError'
  if (timedOut) return new errors.SALTMASQ_SALT_TIMEOUT(timeoutMs)
  if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') {
    return new errors.SALTMASQ_SALT_BAD_RESPONSE('the answer is larger than SALT_API_MAX_RESPONSE_MB')
  }
  return new errors.SALTMASQ_SALT_UNREACHABLE(code ?? e.message ?? String(err))
}

/** Throws the coded error for any answer but 200. */
export function raiseForStatus(res: { status: number, text: string }): void {
  if (res.status === 200) return
  const detail = plainText(res.text)
  if (res.status === 400) {
    const disabled = /Client disabled[^.<]*/i.exec(detail)
    if (disabled !== null) throw new errors.SALTMASQ_SALT_CLIENT_DISABLED(disabled[0])
    throw new errors.SALTMASQ_SALT_BAD_REQUEST(detail)
  }
  throw Object.assign(new errors.SALTMASQ_SALT_UNAVAILABLE(res.status, detail), { upstreamStatus: res.status })
}

export class SaltTransport {
  readonly #opts: TransportOptions
  readonly #origin: string
  readonly #basePath: string
  readonly #dispatcher: Dispatcher
  readonly #ownsDispatcher: boolean
  readonly #connect: Record<string, unknown>

  constructor(opts: TransportOptions) {
    this.#opts = opts
    const url = new URL(opts.url)
    this.#origin = url.origin
    this.#basePath = url.pathname.replace(/\/+$/, '')
    this.#connect = {
      timeout: opts.timeoutMs,
      ...(opts.ca === undefined ? {} : { ca: opts.ca }),
      ...(opts.insecure === true ? { rejectUnauthorized: false } : {}),
    }
    this.#ownsDispatcher = opts.dispatcher === undefined
    this.#dispatcher =
      opts.dispatcher
      ?? new Pool(this.#origin, {
        connections: 4,
        maxResponseSize: opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
        connect: this.#connect,
      })
  }

  get timeoutMs(): number {
    return this.#opts.timeoutMs
  }

  /**
   * Called once the passes are done: a call still in flight (a mine.update waiting on slow
   * minions) is cut off rather than waited for, so a shutdown takes no longer than the passes.
   */
  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.destroy()
  }

  /** POSTs JSON to salt-api and reads the whole answer within `timeoutMs`. */
  async post(
    path: string,
    body: unknown,
    headers: Record<string, string>,
    timeoutMs = this.#opts.timeoutMs,
  ): Promise<SaltResponse> {
    const started = performance.now()
    let status: number
    let resHeaders: SaltResponse['headers']
    let text: string
    try {
      const res = await this.#dispatcher.request({
        origin: this.#origin,
        path: `${this.#basePath}${path}`,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'accept': 'application/json', ...headers },
        body: JSON.stringify(body),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        // A hard deadline for the whole exchange: a server that trickles bytes passes every per-phase timeout.
        signal: AbortSignal.timeout(timeoutMs),
      })
      status = res.statusCode
      resHeaders = res.headers
      text = await res.body.text()
    } catch (err) {
      throw networkError(err, timeoutMs)
    }
    let json: unknown
    if (status === 200) {
      try {
        json = JSON.parse(text)
      } catch {
        throw new errors.SALTMASQ_SALT_BAD_RESPONSE(
          `${path} answered 200 with a body that is not JSON: ${plainText(text).slice(0, 100)}`,
        )
      }
    }
    this.#opts.logger.debug({ path, status, ms: Math.round(performance.now() - started) }, 'salt-api call')
    return { status, headers: resHeaders, text, json }
  }

  /**
   * A connection of its own for the long-lived event stream, with TCP keepalive, so a peer that
   * vanished is noticed even while the bus is quiet. Closed by the caller.
   */
  streamConnection(): Dispatcher {
    if (!this.#ownsDispatcher) return this.#dispatcher
    return new Client(this.#origin, {
      headersTimeout: this.#opts.timeoutMs,
      bodyTimeout: 0,
      connect: { ...this.#connect, keepAlive: true, keepAliveInitialDelay: 30_000 },
    })
  }

  /**
   * GET /events on `connection`: the open body of a 200 answer. A 401 is
   * SALTMASQ_SALT_SESSION_REFUSED (the caller logs in again), any other status its coded error.
   */
  async openEvents(
    connection: Dispatcher,
    token: string,
    signal: AbortSignal,
  ): Promise<Dispatcher.ResponseData['body']> {
    let res: Dispatcher.ResponseData
    try {
      // The connection's connect timeout and headersTimeout bound the wait for salt-api's answer.
      res = await connection.request({
        origin: this.#origin,
        path: `${this.#basePath}/events`,
        method: 'GET',
        // rest_cherrypy 3008 answers any query string with 400: the token goes in the header.
        headers: { 'x-auth-token': token, 'accept': 'text/event-stream' },
        signal,
        headersTimeout: this.#opts.timeoutMs,
        // A quiet bus sends nothing for hours: no body timeout; the stream's age and keepalive bound it.
        bodyTimeout: 0,
      })
    } catch (err) {
      throw networkError(err, this.#opts.timeoutMs)
    }
    if (res.statusCode === 401) {
      await res.body.dump()
      throw new errors.SALTMASQ_SALT_SESSION_REFUSED()
    }
    if (res.statusCode !== 200) raiseForStatus({ status: res.statusCode, text: await res.body.text() })
    return res.body
  }
}
