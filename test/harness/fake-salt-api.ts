// A salt-api stand-in on undici's MockAgent for unit tests of the client's error handling and
// of the routes. The real thing is exercised by test/integration.
import { MockAgent } from 'undici'

export const SALT_URL = 'http://salt.test:8000'

export interface FakeSaltApi {
  agent: MockAgent
  calls: Array<{ path: string, body: unknown, token?: string }>
  mine: Record<string, unknown>
  /** What the dnsmasq minion returns per function (undefined: no minion answers); others return true. */
  local: Map<string, unknown>
  logins: number
  /** Tokens salt-api currently accepts; clear it to simulate a restarted salt-api. */
  validTokens: Set<string>
  /** Called when saltmasq asks for mine.update: lets a test make a late minion's data appear. */
  onMineUpdate?: (chunk: { kwarg: { tgt: string } }) => void
}

export function fakeSaltApi (opts: { latencyMs?: number } = {}): FakeSaltApi {
  const agent = new MockAgent()
  agent.disableNetConnect()
  const pool = agent.get(SALT_URL)
  const fake: FakeSaltApi = { agent, calls: [], mine: {}, local: new Map(), logins: 0, validTokens: new Set() }

  pool.intercept({ path: '/login', method: 'POST' }).reply((req) => {
    fake.logins++
    const body = JSON.parse(String(req.body)) as { password?: string }
    fake.calls.push({ path: '/login', body: { ...body, password: '[seen]' } })
    if (body.password !== 'salt-secret') return { statusCode: 401, data: '<html><h2>401 Unauthorized</h2></html>' }
    const token = `tok${fake.logins}`
    fake.validTokens.add(token)
    return {
      statusCode: 200,
      data: JSON.stringify({ return: [{ token, expire: Date.now() / 1000 + 3600, start: Date.now() / 1000, user: 'saltmasq', eauth: 'pam', perms: [] }] }),
      responseOptions: { headers: { 'x-auth-token': token, 'content-type': 'application/json' } },
    }
  }).persist()

  const answers = pool.intercept({ path: '/', method: 'POST' }).reply((req) => {
    const headers = req.headers as Record<string, string>
    const token = headers['x-auth-token']
    const chunks = JSON.parse(String(req.body)) as Array<{ client: string, fun: string, tgt?: string }>
    fake.calls.push({ path: '/', body: chunks, ...(token === undefined ? {} : { token }) })
    if (token === undefined || !fake.validTokens.has(token)) return { statusCode: 401, data: '<html>401 Unauthorized</html>' }
    const ret = chunks.map((c) => {
      if (c.client === 'runner' && c.fun === 'mine.get') return fake.mine
      if (c.client === 'runner' && c.fun === 'mine.update') {
        fake.onMineUpdate?.(c as unknown as { kwarg: { tgt: string } })
        return true
      }
      if (c.client === 'local') {
        const value = fake.local.has(c.fun) ? fake.local.get(c.fun) : true
        return value === undefined ? {} : { [c.tgt ?? '']: value }
      }
      return null
    })
    return { statusCode: 200, data: JSON.stringify({ return: ret }), responseOptions: { headers: { 'content-type': 'application/json' } } }
  })
  // MockAgent refuses a zero delay.
  if (opts.latencyMs !== undefined && opts.latencyMs > 0) answers.delay(opts.latencyMs)
  answers.persist()

  return fake
}
