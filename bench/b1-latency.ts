// B1: event → applied latency against the real lab (master, salt-api, minions, dnsmasq).
// saltmasq: from the webhook request arriving to the apply (SIGHUP through salt-api) having
// returned, and from the event leaving for the master bus (the reactor included) to the same
// point, as the seed path is timed (bench/seed-path.ts, bench/b2-burst.ts). The floor: the bare salt-api round trips saltmasq needs (one mine.get, one apply),
// timed with undici directly on an open session.
import { join } from 'node:path'
import { pino } from 'pino'
import { request } from 'undici'
import type { SaltmasqApp } from '../src/app.js'
import { Lab } from '../src/lab/lab.js'
import { sleep } from '../src/lab/processes.js'
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

/**
 * The floor: the two salt-api calls a sync needs (one mine.get, one apply), straight from
 * undici on a live session. Returns a function timing one pair, in milliseconds.
 */
async function saltApiFloor (lab: Lab): Promise<() => Promise<number>> {
  const { salt, dns } = lab
  const login = await request(`${salt.apiUrl}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: salt.apiUser, password: salt.apiPassword, eauth: salt.apiEauth }) })
  const sessionToken = login.headers['x-auth-token'] as string
  await login.body.dump()
  const call = async (chunk: unknown) => {
    const res = await request(`${salt.apiUrl}/`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-auth-token': sessionToken }, body: JSON.stringify([chunk]) })
    await res.body.json()
  }
  return async () => {
    const t0 = performance.now()
    await call({ client: 'runner', fun: 'mine.get', arg: ['*', 'network.ip_addrs'] })
    await call({ client: 'local', tgt: 'dns-host', fun: 'cmd.run_all', arg: [dns.reloadScript] })
    return performance.now() - t0
  }
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
    const { salt, auth } = lab

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

    const floorSample = await saltApiFloor(lab)
    const floor: number[] = []
    for (let i = 0; i < events; i++) floor.push(await floorSample())
    return [
      row('saltmasq: webhook received → dnsmasq reloaded', fromHook),
      row('saltmasq: event on the master bus → dnsmasq reloaded', fromEvent),
      row('floor: bare salt-api mine.get + apply (undici)', floor),
    ]
  } finally {
    await lab.stop()
  }
}

/**
 * B1 through salt-api's event stream, with no reactor at all: from the event leaving for the
 * master bus to dnsmasq reloaded (hostsfile), against the floor timed in the same lab between
 * samples, and to dnsmasq answering for the new name with no apply at all (hostsdir, inotify).
 * The hostsfile samples reuse one machine (its reservation deleted before each event, as the
 * webhook rows do), so the mine is the same size for every sample and for the floor. The
 * hostsdir samples need a name dnsmasq has never held (a deleted name keeps resolving until the
 * next reload), so each is a new machine registered just before its event.
 */
export async function benchStreamLatency (events: number): Promise<LatencyRow[]> {
  const lab = await Lab.start({ minions: [{ id: 'bench01', ips: ['10.77.0.21'] }], reactor: false })
  try {
    const env = (format: 'hostsfile' | 'hostsdir') => lab.saltmasqEnv(format, {
      RECONCILE_INTERVAL_S: '0', LOG_LEVEL: 'error', DNS_DOMAIN: 'lab', STATE_FILE: join(lab.dir, `state-${format}.json`),
    })
    const connected = async (app: SaltmasqApp) => {
      while (app.saltmasq.stream?.state.connected !== true || app.saltmasq.scheduler.lastResult === null) await sleep(5)
      await app.saltmasq.scheduler.idle()
    }

    const reloaded: number[] = []
    const floor: number[] = []
    const floorSample = await saltApiFloor(lab)
    let appliedFor = ''
    let appliedAtEpoch = 0
    let app = await lab.startSaltmasq(env('hostsfile'), pino({ level: 'error' }))
    app.saltmasq.scheduler.onSync((r) => {
      if (r.applied && r.added.length > 0) {
        appliedFor = r.added.map((a) => a.minionId).join(',')
        appliedAtEpoch = Date.now()
      }
    })
    await connected(app)
    for (let i = 0; i < events; i++) {
      await app.inject({ method: 'DELETE', url: '/reservations/bench01?wait=true', headers: lab.auth })
      await app.saltmasq.scheduler.idle()
      floor.push(await floorSample())
      appliedFor = ''
      const { at: fired } = await lab.salt.fireCloudEvents('created', 1, 'bench01')
      const deadline = Date.now() + 60_000
      while (appliedFor !== 'bench01' && Date.now() < deadline) await sleep(2)
      if (appliedFor !== 'bench01') throw new Error('bench01: the event on the stream never led to an apply')
      reloaded.push(appliedAtEpoch - fired)
      await app.saltmasq.scheduler.idle()
    }
    await lab.stopSaltmasq()

    const live: number[] = []
    app = await lab.startSaltmasq(env('hostsdir'), pino({ level: 'error' }))
    await connected(app)
    for (let i = 0; i < events; i++) {
      const [id] = await lab.salt.registerFakeMinions(1, `10.77.${30 + i}`, `ev${i}x`)
      const { at: fired } = await lab.salt.fireCloudEvents('created', 1, id!)
      const deadline = Date.now() + 60_000
      while ((await lab.dns.resolve(`${id!}.lab`)).length === 0) {
        if (Date.now() > deadline) throw new Error(`${id!}: dnsmasq never answered for it`)
        await sleep(2)
      }
      live.push(Date.now() - fired)
      await app.saltmasq.scheduler.idle()
    }
    return [
      row('saltmasq: event on the bus → dnsmasq reloaded (stream, hostsfile)', reloaded),
      row('floor, same lab, between those samples: bare mine.get + apply (undici)', floor),
      row('saltmasq: event on the bus → answering (stream, hostsdir, no apply)', live),
    ]
  } finally {
    await lab.stop()
  }
}
