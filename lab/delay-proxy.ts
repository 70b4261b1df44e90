// A loopback HTTP proxy in front of salt-api that can hold each answer back: how a slow or
// overloaded salt-api looks to saltmasq.
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export class DelayProxy {
  readonly url: string
  /** Added before each answer is passed on. */
  delayMs = 0
  forwarded = 0
  /** The `fun` of every lowstate chunk that went through (login calls as 'login'). */
  readonly calls: string[] = []
  readonly #server: Server

  private constructor(server: Server) {
    this.#server = server
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }

  static async start(target: string): Promise<DelayProxy> {
    const upstream = new URL(target)
    let proxy: DelayProxy | undefined
    const server = createServer((req, res) => {
      const body: Buffer[] = []
      req.on('data', (c: Buffer) => body.push(c))
      req.on('end', () => {
        const text = Buffer.concat(body).toString()
        if (req.url?.endsWith('/login') === true) proxy!.calls.push('login')
        else {
          try {
            for (const chunk of JSON.parse(text) as Array<{ fun?: string }>) proxy!.calls.push(chunk.fun ?? '?')
          } catch {
            proxy!.calls.push('?')
          }
        }
        out.end(text)
      })
      const out = request(
        { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
        (answer) => {
          // An event stream is passed through as it comes (never delayed: it has no end to wait for).
          if ((answer.headers['content-type'] ?? '').startsWith('text/event-stream')) {
            res.writeHead(answer.statusCode ?? 502, answer.headers)
            answer.pipe(res)
            res.on('close', () => answer.destroy())
            return
          }
          const chunks: Buffer[] = []
          answer.on('data', (c: Buffer) => chunks.push(c))
          answer.on('end', () => {
            setTimeout(() => {
              proxy!.forwarded++
              if (res.destroyed) return
              res.writeHead(answer.statusCode ?? 502, answer.headers)
              res.end(Buffer.concat(chunks))
            }, proxy!.delayMs)
          })
        },
      )
      out.on('error', () => {
        res.writeHead(502).end()
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    proxy = new DelayProxy(server)
    return proxy
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections()
    await new Promise((resolve) => this.#server.close(resolve))
  }
}
