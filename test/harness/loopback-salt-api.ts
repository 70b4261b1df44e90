// A salt-api stand-in on a loopback port, for tests and benchmarks that run saltmasq as its own
// process (MockAgent cannot reach another process). It answers /login and POST / lowstate
// like rest_cherrypy: runner mine.get from a mine the caller sets, mine.update, and local calls.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface LoopbackSaltApiOptions {
  /** Returns the mine for each mine.get; called per request so a test can change it. */
  mine: () => Record<string, unknown>
  /** Delay before answering local (apply) calls. */
  applyDelayMs?: number
}

export class LoopbackSaltApi {
  readonly url: string
  readonly password = 'loopback-salt-password'
  readonly counts = { login: 0, mineGet: 0, mineUpdate: 0, local: 0, localDone: 0 }
  readonly #server: Server

  private constructor (server: Server) {
    this.#server = server
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }

  static async start (opts: LoopbackSaltApiOptions): Promise<LoopbackSaltApi> {
    let api: LoopbackSaltApi | undefined
    const server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        void api!.#answer(req.url ?? '/', Buffer.concat(chunks).toString(), opts).then(([status, body, headers]) => {
          res.writeHead(status, { 'content-type': 'application/json', ...headers })
          res.end(body)
        })
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    api = new LoopbackSaltApi(server)
    return api
  }

  get env (): Record<string, string> {
    return { SALT_API_URL: this.url, SALT_API_USER: 'saltmasq', SALT_API_PASSWORD: this.password, SALT_API_EAUTH: 'sharedsecret' }
  }

  async #answer (path: string, body: string, opts: LoopbackSaltApiOptions): Promise<[number, string, Record<string, string>]> {
    if (path === '/login') {
      this.counts.login++
      return [200, JSON.stringify({ return: [{ token: 'loopback-token', expire: Date.now() / 1000 + 3600 }] }), { 'x-auth-token': 'loopback-token' }]
    }
    const ret: unknown[] = []
    for (const chunk of JSON.parse(body) as Array<{ client: string, fun: string, tgt?: string }>) {
      if (chunk.fun === 'mine.get') {
        this.counts.mineGet++
        ret.push(opts.mine())
      } else if (chunk.fun === 'mine.update') {
        this.counts.mineUpdate++
        ret.push(true)
      } else {
        this.counts.local++
        if (opts.applyDelayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, opts.applyDelayMs))
        this.counts.localDone++
        ret.push({ [chunk.tgt ?? 'dns']: true })
      }
    }
    return [200, JSON.stringify({ return: ret }), {}]
  }

  async close (): Promise<void> {
    this.#server.closeAllConnections()
    await new Promise((resolve) => this.#server.close(resolve))
  }
}
