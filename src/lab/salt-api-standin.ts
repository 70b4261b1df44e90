// A salt-api stand-in: the part of rest_cherrypy's protocol saltmasq speaks (POST /login, POST /
// with a lowstate list: runner mine.get and mine.update, local calls), implemented once and
// served two ways: on undici's MockAgent for in-process unit tests, and on a loopback port
// (plain or TLS) for tests and benchmarks that run saltmasq as its own process. The real
// salt-api is what the integration tests, the DHCP lab and the demo run against.
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { MockAgent } from 'undici'

/** Where MockAgent answers in-process. */
export const STANDIN_URL = 'http://salt.test:8000'

export interface StandInOptions {
  /** The password /login accepts. */
  password?: string
  /** Delay before every answer to POST / (salt-api's own latency). */
  latencyMs?: number
  /** Delay before answering local (apply) calls. */
  applyDelayMs?: number
}

interface Answer {
  status: number
  body: string
  headers: Record<string, string>
}

interface Chunk {
  client: string
  fun: string
  tgt?: string
  kwarg?: { tgt: string }
}

export class SaltApiStandIn {
  readonly password: string
  /** Every request, in order (the password is never kept). */
  readonly calls: Array<{ path: string, body: unknown, token?: string }> = []
  readonly counts = { login: 0, mineGet: 0, mineUpdate: 0, local: 0 }
  /** Local calls answered (on a port, an answer is sent after the apply delay). */
  localDone = 0
  /** What mine.get returns: a mapping, or a function called per read so a test can vary it. */
  mine: Record<string, unknown> | (() => Record<string, unknown>) = {}
  /** What the target minion returns per local function (undefined: no minion answers); others return true. */
  readonly local = new Map<string, unknown>()
  /** Tokens it accepts now; clear it to act as a restarted salt-api (every session gone). */
  readonly validTokens = new Set<string>()
  /** Called when saltmasq asks for mine.update: lets a test make a late minion's data appear. */
  onMineUpdate?: (chunk: { kwarg: { tgt: string } }) => void
  readonly #opts: StandInOptions
  #url = STANDIN_URL
  #server: Server | null = null

  constructor (opts: StandInOptions = {}) {
    this.#opts = opts
    this.password = opts.password ?? 'salt-secret'
  }

  /** A stand-in listening on a loopback port, answering mine.get with `mine`. */
  static async listening (mine: SaltApiStandIn['mine'], opts: StandInOptions = {}): Promise<SaltApiStandIn> {
    const api = new SaltApiStandIn(opts)
    api.mine = mine
    await api.listen()
    return api
  }

  get url (): string {
    return this.#url
  }

  get logins (): number {
    return this.counts.login
  }

  /** The SALT_API_* variables that point saltmasq here. */
  get env (): Record<string, string> {
    return { SALT_API_URL: this.#url, SALT_API_USER: 'saltmasq', SALT_API_PASSWORD: this.password, SALT_API_EAUTH: 'sharedsecret' }
  }

  /** Calls of one function, counted from the recorded requests. */
  count (fun: string): number {
    return this.calls.filter((c) => Array.isArray(c.body) && (c.body as Chunk[]).some((x) => x.fun === fun)).length
  }

  /** The protocol itself, whatever carries it (delays are the transport's). */
  answer (path: string, token: string | undefined, text: string): Answer {
    const json = { 'content-type': 'application/json' }
    if (path === '/login') {
      this.counts.login++
      const body = JSON.parse(text) as { password?: string }
      this.calls.push({ path, body: { ...body, password: '[seen]' } })
      if (body.password !== this.password) return { status: 401, body: '<html><h2>401 Unauthorized</h2></html>', headers: { 'content-type': 'text/html' } }
      const issued = `tok${this.counts.login}`
      this.validTokens.add(issued)
      const now = Date.now() / 1000
      return {
        status: 200,
        body: JSON.stringify({ return: [{ token: issued, expire: now + 3600, start: now, user: 'saltmasq', eauth: 'sharedsecret', perms: [] }] }),
        headers: { ...json, 'x-auth-token': issued },
      }
    }
    const chunks = JSON.parse(text) as Chunk[]
    this.calls.push({ path, body: chunks, ...(token === undefined ? {} : { token }) })
    if (token === undefined || !this.validTokens.has(token)) return { status: 401, body: '<html>401 Unauthorized</html>', headers: { 'content-type': 'text/html' } }
    return { status: 200, body: JSON.stringify({ return: chunks.map((c) => this.#run(c)) }), headers: json }
  }

  /** How long a real salt-api would take over this request. */
  #delayFor (path: string, text: string): number {
    if (path === '/login') return 0
    const local = text.includes('"client":"local"')
    return (this.#opts.latencyMs ?? 0) + (local ? this.#opts.applyDelayMs ?? 0 : 0)
  }

  #run (c: Chunk): unknown {
    if (c.client === 'runner' && c.fun === 'mine.get') {
      this.counts.mineGet++
      return typeof this.mine === 'function' ? this.mine() : this.mine
    }
    if (c.client === 'runner' && c.fun === 'mine.update') {
      this.counts.mineUpdate++
      this.onMineUpdate?.(c as { kwarg: { tgt: string } })
      return true
    }
    if (c.client === 'local') {
      this.counts.local++
      const value = this.local.has(c.fun) ? this.local.get(c.fun) : true
      return value === undefined ? {} : { [c.tgt ?? '']: value }
    }
    return null
  }

  /**
   * In-process: an undici MockAgent to pass to saltmasq as its dispatcher. `first` may register
   * interceptors of its own that answer before the stand-in does (a client test's faults).
   */
  mockAgent (first?: (pool: ReturnType<MockAgent['get']>) => void): MockAgent {
    const agent = new MockAgent()
    agent.disableNetConnect()
    const pool = agent.get(STANDIN_URL)
    first?.(pool)
    for (const path of ['/login', '/']) {
      const scope = pool.intercept({ path, method: 'POST' }).reply((req) => {
        const headers = req.headers as Record<string, string>
        const a = this.answer(path, headers['x-auth-token'], String(req.body))
        return { statusCode: a.status, data: a.body, responseOptions: { headers: a.headers } }
      })
      // MockAgent refuses a zero delay.
      if (path === '/' && (this.#opts.latencyMs ?? 0) > 0) scope.delay(this.#opts.latencyMs!)
      scope.persist()
    }
    return agent
  }

  /** On a loopback port; with `tls` over https with that key and certificate. */
  async listen (tls?: { key: string | Buffer, cert: string }): Promise<string> {
    const handler = (req: IncomingMessage, res: import('node:http').ServerResponse): void => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const token = req.headers['x-auth-token']
        const path = req.url ?? '/'
        const text = Buffer.concat(chunks).toString()
        const a = this.answer(path, Array.isArray(token) ? token[0] : token, text)
        setTimeout(() => {
          if (text.includes('"client":"local"')) this.localDone++
          res.writeHead(a.status, a.headers)
          res.end(a.body)
        }, this.#delayFor(path, text))
      })
    }
    const server = tls === undefined ? createHttpServer(handler) : createHttpsServer(tls, handler)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    this.#server = server
    this.#url = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${(server.address() as AddressInfo).port}`
    return this.#url
  }

  async close (): Promise<void> {
    const server = this.#server
    if (server === null) return
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    this.#server = null
  }
}
