// saltmasq as its own process (dist/src/server.js, the production entry), optionally inside a
// network namespace, with HTTP requests made from that namespace. `npm test` builds dist first.
import { join } from 'node:path'
import type { Namespace } from './netns.js'
import { NODE_FLAGS } from '../src/start/node-flags.js'
import { repoRoot } from './paths.js'
import { freePort, startDaemon, stopDaemon, waitFor, type Daemon } from './processes.js'

export interface HttpAnswer {
  status: number
  body: any
}

const FETCH = `
const [method, url, token, body] = process.argv.slice(1)
const headers = { authorization: 'Bearer ' + token }
if (body) headers['content-type'] = 'application/json'
fetch(url, { method, headers, body: body || undefined }).then(async (r) => {
  process.stdout.write(JSON.stringify({ status: r.status, text: await r.text() }))
}, (err) => { process.stdout.write(JSON.stringify({ status: 0, text: String(err) })) })
`

export class SaltmasqProcess {
  readonly url: string
  readonly logFile: string
  readonly #daemon: Daemon
  readonly #ns: Namespace | undefined
  readonly #token: string

  private constructor(daemon: Daemon, url: string, logFile: string, token: string, ns: Namespace | undefined) {
    this.#daemon = daemon
    this.url = url
    this.logFile = logFile
    this.#token = token
    this.#ns = ns
  }

  /** `uid`: run as this user and group id (no supplementary groups), not as root. */
  static async start(
    env: Record<string, string>,
    logFile: string,
    ns?: Namespace,
    uid?: number,
  ): Promise<SaltmasqProcess> {
    const port = env.PORT ?? String(await freePort())
    const fullEnv = { PATH: process.env.PATH, HOST: '127.0.0.1', ...env, PORT: port }
    const server = [...NODE_FLAGS, join(repoRoot, 'dist', 'src', 'server.js')]
    const [command, args] =
      uid === undefined
        ? [process.execPath, server]
        : ['setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, ...server]]
    const daemon =
      ns === undefined
        ? startDaemon('saltmasq', command, args, logFile, fullEnv)
        : ns.daemon('saltmasq', command, args, logFile, fullEnv)
    const svc = new SaltmasqProcess(daemon, `http://127.0.0.1:${port}`, logFile, env.WEBHOOK_TOKEN ?? '', ns)
    await waitFor(
      'saltmasq /health',
      async () => {
        if (daemon.child.exitCode !== null)
          throw new Error(`saltmasq exited with ${daemon.child.exitCode}; see ${logFile}`)
        return (await svc.request('GET', '/health')).status === 200
      },
      30_000,
      100,
    )
    return svc
  }

  async request(method: string, path: string, body?: unknown): Promise<HttpAnswer> {
    const { status, text } =
      this.#ns === undefined
        ? await this.#fetchHere(method, path, body)
        : await this.#fetchInNamespace(this.#ns, method, path, body)
    let parsed: unknown = text
    try {
      parsed = JSON.parse(text)
    } catch {
      // not JSON: keep the text
    }
    return { status, body: parsed }
  }

  async #fetchHere(method: string, path: string, body: unknown): Promise<{ status: number, text: string }> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}` }
    if (body !== undefined) headers['content-type'] = 'application/json'
    try {
      const res = await fetch(`${this.url}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
      return { status: res.status, text: await res.text() }
    } catch (err) {
      return { status: 0, text: String(err) }
    }
  }

  /** Our process cannot enter a namespace: a short-lived node inside it makes the request. */
  async #fetchInNamespace(
    ns: Namespace,
    method: string,
    path: string,
    body: unknown,
  ): Promise<{ status: number, text: string }> {
    const res = await ns.run(process.execPath, [
      '-e',
      FETCH,
      method,
      `${this.url}${path}`,
      this.#token,
      body === undefined ? '' : JSON.stringify(body),
    ])
    return JSON.parse(res.stdout) as { status: number, text: string }
  }

  get pid(): number {
    return this.#daemon.child.pid ?? 0
  }

  /** Sends `signal` to saltmasq and resolves with its exit code once it is gone. */
  async kill(signal: NodeJS.Signals): Promise<number | null> {
    this.#daemon.child.kill(signal)
    return await this.#daemon.exited
  }

  async stop(): Promise<void> {
    await stopDaemon(this.#daemon)
  }
}
