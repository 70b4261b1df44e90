// A salt-api stand-in: the part of rest_cherrypy's protocol saltmasq speaks (POST /login, POST /
// with a lowstate list: runner mine.get and mine.update, local calls), implemented once and
// served two ways: on undici's MockAgent for in-process unit tests, and on a loopback port
// (plain or TLS) for tests and benchmarks that run saltmasq as its own process. The real
// salt-api is what the integration tests, the DHCP lab and the demo run against.
// Over 250 lines: one protocol stand-in served two ways (MockAgent and a port) plus its event
// stream; kept whole so both ways answer alike. Test kit, not shipped.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { MockAgent } from 'undici'

/** One event as rest_cherrypy's GET /events sends it. */
export function sseEvent(tag: string, data: unknown): string {
  return `tag: ${tag}\ndata: ${JSON.stringify({ data, tag })}\n\n`
}

/** Where MockAgent answers in-process. */
export const STANDIN_URL = 'http://salt.test:8000'

export interface StandInOptions {
  /** The password /login accepts. */
  password?: string
  /** Delay before every answer to POST / (salt-api's own latency). */
  latencyMs?: number
  /** Delay before answering local (apply) calls. */
  applyDelayMs?: number
  /** How long a session lasts (the `expire` /login reports); an hour by default. */
  tokenLifetimeS?: number
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
  /**
   * The minions whose key the master has accepted (wheel key.list_all). Null: every minion the
   * mine has ever returned and `deleteKey` has not deleted (a minion that only left the mine
   * keeps its key, as on a real master).
   */
  keys: Set<string> | null = null
  /** Keys deleted while `keys` is null. */
  readonly #deletedKeys = new Set<string>()
  /** Minions the key list answers as pending (never accepted: they count for nothing). */
  readonly pending = new Set<string>()
  /** Answer wheel calls like a master without wheel in netapi_enable_clients. */
  wheelDisabled = false
  /** Answer GET /events with 404 (a proxy in front of salt-api that does not pass it). */
  eventsDisabled = false
  readonly #seenInMine = new Set<string>()
  /** Over a loopback port: how long mine.update takes to answer (minions that are slow to). */
  mineUpdateDelayMs = 0
  /** Called when saltmasq asks for mine.update: lets a test make a late minion's data appear. */
  onMineUpdate?: (chunk: { kwarg: { tgt: string } }) => void
  readonly #opts: StandInOptions
  #url = STANDIN_URL
  #server: Server | null = null
  readonly #streams = new Set<ServerResponse>()

  constructor(opts: StandInOptions = {}) {
    this.#opts = opts
    this.password = opts.password ?? 'salt-secret'
  }

  /** A stand-in listening on a loopback port, answering mine.get with `mine`. */
  static async listening(mine: SaltApiStandIn['mine'], opts: StandInOptions = {}): Promise<SaltApiStandIn> {
    const api = new SaltApiStandIn(opts)
    api.mine = mine
    await api.listen()
    return api
  }

  get url(): string {
    return this.#url
  }

  get logins(): number {
    return this.counts.login
  }

  /** The SALT_API_* variables that point saltmasq here. */
  get env(): Record<string, string> {
    return { SALT_API_URL: this.#url, SALT_API_USER: 'saltmasq', SALT_API_PASSWORD: this.password, SALT_API_EAUTH: 'sharedsecret' }
  }

  /** Calls of one function, counted from the recorded requests. */
  count(fun: string): number {
    return this.calls.filter((c) => Array.isArray(c.body) && (c.body as Chunk[]).some((x) => x.fun === fun)).length
  }

  /** The protocol itself, whatever carries it (delays are the transport's). */
  answer(path: string, token: string | undefined, text: string): Answer {
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
        body: JSON.stringify({ return: [{ token: issued, expire: now + (this.#opts.tokenLifetimeS ?? 3600), start: now, user: 'saltmasq', eauth: 'sharedsecret', perms: [] }] }),
        headers: { ...json, 'x-auth-token': issued },
      }
    }
    const chunks = JSON.parse(text) as Chunk[]
    this.calls.push({ path, body: chunks, ...(token === undefined ? {} : { token }) })
    if (token === undefined || !this.validTokens.has(token)) return { status: 401, body: '<html>401 Unauthorized</html>', headers: { 'content-type': 'text/html' } }
    if (this.wheelDisabled && chunks.some((c) => c.client === 'wheel')) {
      return { status: 400, body: '<html><body><h2>400 Bad Request</h2><p>Client disabled: \'wheel\'. Add to \'netapi_enable_clients\' master config option to enable.</p></body></html>', headers: { 'content-type': 'text/html' } }
    }
    return { status: 200, body: JSON.stringify({ return: chunks.map((c) => this.#run(c)) }), headers: json }
  }

  #accepted(): Set<string> {
    if (this.keys !== null) return this.keys
    // A minion with mine data has had its key accepted.
    const accepted = new Set(this.#seenInMine)
    if (typeof this.mine !== 'function') for (const id of Object.keys(this.mine)) accepted.add(id)
    for (const id of this.#deletedKeys) accepted.delete(id)
    return accepted
  }

  /** What `salt-key -d` (or salt-cloud's destroy, after its event) does to the master's key store. */
  deleteKey(minionId: string): void {
    if (this.keys !== null) this.keys.delete(minionId)
    else this.#deletedKeys.add(minionId)
  }

  /** How long a real salt-api would take over this request. */
  #delayFor(path: string, text: string): number {
    if (path === '/login') return 0
    const local = text.includes('"client":"local"')
    const update = text.includes('"fun":"mine.update"') ? this.mineUpdateDelayMs : 0
    return (this.#opts.latencyMs ?? 0) + (local ? this.#opts.applyDelayMs ?? 0 : 0) + update
  }

  #run(c: Chunk): unknown {
    if (c.client === 'runner' && c.fun === 'mine.get') {
      this.counts.mineGet++
      const mine = typeof this.mine === 'function' ? this.mine() : this.mine
      for (const id of Object.keys(mine)) this.#seenInMine.add(id)
      // The runner targets accepted minions only: a deleted key's mine entry is not returned.
      if (this.#deletedKeys.size === 0 && this.keys === null) return mine
      return Object.fromEntries(Object.entries(mine).filter(([id]) => this.#accepted().has(id)))
    }
    if (c.client === 'wheel' && c.fun === 'key.list_all') {
      const accepted = [...this.#accepted()].sort()
      return { tag: 'salt/wheel/1', data: { fun: 'wheel.key.list_all', return: { minions: accepted, minions_pre: [...this.pending].sort(), minions_rejected: [], minions_denied: [], local: ['master.pem', 'master.pub'] }, success: true } }
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
  mockAgent(first?: (pool: ReturnType<MockAgent['get']>) => void): MockAgent {
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

  /** On a loopback port (`port`, or a free one); with `tls` over https with that key and certificate. */
  async listen(tls?: { key: string | Buffer, cert: string }, port = 0): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      if (req.method === 'GET' && (req.url ?? '').startsWith('/events')) {
        this.#openStream(req, res)
        return
      }
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
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    this.#server = server
    this.#url = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${(server.address() as AddressInfo).port}`
    return this.#url
  }

  /** Event streams open now (GET /events). */
  get streams(): number {
    return this.#streams.size
  }

  /** GET /events as rest_cherrypy 3008 answers it: header auth only, `retry: 400` first. */
  #openStream(req: IncomingMessage, res: ServerResponse): void {
    const token = req.headers['x-auth-token']
    this.calls.push({ path: '/events', body: null, ...(typeof token === 'string' ? { token } : {}) })
    if ((req.url ?? '') !== '/events') {
      res.writeHead(400, { 'content-type': 'text/html' }).end('<html>400 Bad Request</html>')
      return
    }
    if (this.eventsDisabled) {
      res.writeHead(404, { 'content-type': 'text/html' }).end('<html>404 Not Found</html>')
      return
    }
    if (typeof token !== 'string' || !this.validTokens.has(token)) {
      res.writeHead(401, { 'content-type': 'text/html' }).end('<html>401 Unauthorized</html>')
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.write('retry: 400\n\n')
    this.#streams.add(res)
    res.on('close', () => this.#streams.delete(res))
  }

  /** Fires an event on the stand-in's bus: every open stream gets it as salt-api sends it. */
  emit(tag: string, data: unknown): void {
    const text = sseEvent(tag, data)
    for (const res of this.#streams) res.write(text)
  }

  /** Writes text to every open stream as it is; resolves when all of them took it (backpressure). */
  async emitRaw(text: string): Promise<void> {
    await Promise.all([...this.#streams].map(async (res) => {
      if (!res.write(text)) await new Promise((resolve) => res.once('drain', resolve))
    }))
  }

  /** Ends every open stream (what a salt-api restart does to them). */
  dropStreams(): void {
    for (const res of this.#streams) res.destroy()
    this.#streams.clear()
  }

  async close(): Promise<void> {
    this.dropStreams()
    const server = this.#server
    if (server === null) return
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    this.#server = null
  }
}
