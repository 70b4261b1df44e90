// B1: event → applied latency against the real lab (master, salt-api, minions, dnsmasq).
// saltmasq: from the webhook request arriving to the apply (SIGHUP through salt-api) having
// returned, and from the event leaving for the master bus (the reactor included) to the same
// point, as the seed path is timed (bench/seed-path.ts, bench/b2-burst.ts). The floor: the bare salt-api round trips saltmasq needs (one mine.get, one apply),
// timed with undici directly on an open session.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { request } from 'undici'
import { buildApp } from '../src/app.js'
import { LoopbackDnsmasq } from '../test/harness/loopback-dnsmasq.js'
import { freePort } from '../test/harness/processes.js'
import { SaltLab } from '../test/harness/salt-lab.js'
import { fireEvents } from './b2-burst.js'
import { median, round } from './stats.js'

export interface LatencyRow {
  path: string
  runs: number
  medianMs: number
  minMs: number
  maxMs: number
}

function row (path: string, samples: number[]): LatencyRow {
  return { path, runs: samples.length, medianMs: round(median(samples)), minMs: round(Math.min(...samples)), maxMs: round(Math.max(...samples)) }
}

export async function benchLatency (events: number): Promise<LatencyRow[]> {
  const tmp = await mkdtemp(join(tmpdir(), 'smq-b1-'))
  const token = randomBytes(24).toString('hex')
  const dns = await LoopbackDnsmasq.start(join(tmp, 'dns'))
  const port = await freePort()
  let lab: SaltLab | undefined
  let app: Awaited<ReturnType<typeof buildApp>> | undefined
  try {
    lab = await SaltLab.start({
      minions: [{ id: 'dns-host', ips: ['127.0.0.1'] }, { id: 'bench01', ips: ['10.77.0.21'] }],
      webhookUrl: `http://127.0.0.1:${port}/hooks/salt`,
      webhookToken: token,
      extraPermissions: ["      - 'dns-host':", '        - cmd.run_all:', '            args:', `              - ${dns.reloadScript}`].join('\n'),
    })
    app = await buildApp({
      env: {
        ...lab.saltApiEnv, WEBHOOK_TOKEN: token, MANAGED_SUBNETS: '10.77.0.0/16', RESERVATIONS_FORMAT: 'hostsfile', DHCP_HOSTSFILE: dns.dhcpHostsFile, ADDN_HOSTS_FILE: dns.addnHostsFile,
        STATE_FILE: join(tmp, 'state.json'), DNSMASQ_MINION: 'dns-host', DNSMASQ_APPLY_FUNCTION: 'cmd.run_all', DNSMASQ_APPLY_ARGS: JSON.stringify([dns.reloadScript]),
        DNSMASQ_RELEASE_FUNCTION: '', RECONCILE_INTERVAL_S: '0', LOG_LEVEL: 'error',
      },
      logger: pino({ level: 'error' }),
    })
    let hookAt = 0
    app.addHook('onRequest', async (req) => { if (req.url === '/hooks/salt') hookAt = performance.now() })
    let appliedAt = 0
    let appliedAtEpoch = 0
    let appliedSeen = 0
    app.saltmasq.engine.onSync((r) => {
      if (r.applied && r.added.length > 0) {
        appliedAt = performance.now()
        appliedAtEpoch = Date.now()
        appliedSeen++
      }
    })
    await app.listen({ host: '127.0.0.1', port })
    const auth = { authorization: `Bearer ${token}` }

    const fromHook: number[] = []
    const fromEvent: number[] = []
    for (let i = 0; i < events; i++) {
      await app.inject({ method: 'DELETE', url: '/reservations/bench01?wait=true', headers: auth })
      const seen = appliedSeen
      const { at: fired } = await fireEvents(lab, 1, 'bench01')
      const deadline = Date.now() + 60_000
      while (appliedSeen === seen && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2))
      if (appliedSeen === seen) throw new Error('the created event never led to an apply')
      fromHook.push(appliedAt - hookAt)
      fromEvent.push(appliedAtEpoch - fired)
    }

    // The floor: the same two salt-api calls, straight from undici on a live session.
    const login = await request(`${lab.apiUrl}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: lab.apiUser, password: lab.apiPassword, eauth: lab.apiEauth }) })
    const sessionToken = login.headers['x-auth-token'] as string
    await login.body.dump()
    const call = async (chunk: unknown) => {
      const res = await request(`${lab!.apiUrl}/`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-auth-token': sessionToken }, body: JSON.stringify([chunk]) })
      await res.body.json()
    }
    const floor: number[] = []
    for (let i = 0; i < events; i++) {
      const t0 = performance.now()
      await call({ client: 'runner', fun: 'mine.get', arg: ['*', 'network.ip_addrs'] })
      await call({ client: 'local', tgt: 'dns-host', fun: 'cmd.run_all', arg: [dns.reloadScript] })
      floor.push(performance.now() - t0)
    }
    return [
      row('saltmasq: webhook received → dnsmasq reloaded', fromHook),
      row('saltmasq: event on the master bus → dnsmasq reloaded', fromEvent),
      row('floor: bare salt-api mine.get + apply (undici)', floor),
    ]
  } finally {
    await app?.close()
    await lab?.stop()
    await dns.stop()
    await rm(tmp, { recursive: true, force: true })
  }
}
