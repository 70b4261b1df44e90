// B1: event → applied latency against the real lab (master, salt-api, minions, dnsmasq).
// saltmasq: from the webhook request arriving to the apply (SIGHUP through salt-api) having
// returned, and from the event leaving for the master bus (the reactor included) to the same
// point, as the seed path is timed (bench/seed-path.ts, bench/b2-burst.ts). The floor: the bare salt-api round trips saltmasq needs (one mine.get, one apply),
// timed with undici directly on an open session.
import { pino } from 'pino'
import { request } from 'undici'
import { Lab } from '../src/lab/lab.js'
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
  const lab = await Lab.start({ minions: [{ id: 'bench01', ips: ['10.77.0.21'] }] })
  try {
    let hookAt = 0
    let appliedAt = 0
    let appliedAtEpoch = 0
    let appliedSeen = 0
    const app = await lab.startSaltmasq(lab.saltmasqEnv('hostsfile', { RECONCILE_INTERVAL_S: '0', LOG_LEVEL: 'error', EVENT_STREAM: 'false' }), pino({ level: 'error' }), (app) => {
      app.addHook('onRequest', async (req) => { if (req.url === '/hooks/salt') hookAt = performance.now() })
    })
    app.saltmasq.scheduler.onSync((r) => {
      if (r.applied && r.added.length > 0) {
        appliedAt = performance.now()
        appliedAtEpoch = Date.now()
        appliedSeen++
      }
    })
    const { salt, dns, auth } = lab

    const fromHook: number[] = []
    const fromEvent: number[] = []
    for (let i = 0; i < events; i++) {
      await app.inject({ method: 'DELETE', url: '/reservations/bench01?wait=true', headers: auth })
      const seen = appliedSeen
      const { at: fired } = await salt.fireCloudEvents('created', 1, 'bench01')
      const deadline = Date.now() + 60_000
      while (appliedSeen === seen && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2))
      if (appliedSeen === seen) throw new Error('the created event never led to an apply')
      fromHook.push(appliedAt - hookAt)
      fromEvent.push(appliedAtEpoch - fired)
    }

    // The floor: the same two salt-api calls, straight from undici on a live session.
    const login = await request(`${salt.apiUrl}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: salt.apiUser, password: salt.apiPassword, eauth: salt.apiEauth }) })
    const sessionToken = login.headers['x-auth-token'] as string
    await login.body.dump()
    const call = async (chunk: unknown) => {
      const res = await request(`${salt.apiUrl}/`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-auth-token': sessionToken }, body: JSON.stringify([chunk]) })
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
    await lab.stop()
  }
}
