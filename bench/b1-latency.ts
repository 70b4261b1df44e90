// B1: event → applied latency against the real lab (master, salt-api, minions, dnsmasq).
// saltmasq: from the webhook request arriving to the apply (SIGHUP through salt-api) having
// returned, and from the event leaving for the master bus (the reactor included) to the same
// point, as the seed path is timed (bench/seed-path.ts, bench/b2-burst.ts). The floor: the bare salt-api round trips
// saltmasq needs (one mine.get, one apply),
// timed with undici directly on an open session.
import { join } from 'node:path'
import { pino } from 'pino'
import { request } from 'undici'
import type { SaltmasqApp } from '../src/app.js'
import { Lab } from '../lab/lab.js'
import type { SyncResult } from '../src/sync/result.js'
import { sleep } from '../lab/processes.js'
import { median, round } from './stats.js'

export interface LatencyRow {
  path: string
  runs: number
  medianMs: number
  minMs: number
  maxMs: number
}

function row(path: string, samples: number[]): LatencyRow {
  return {
    path,
    runs: samples.length,
    medianMs: round(median(samples)),
    minMs: round(Math.min(...samples)),
    maxMs: round(Math.max(...samples)),
  }
}

/**
 * Every timed step starts on a quiet master: after a sync, saltmasq reads the key list
 * (key.list_all) in the background, and a timed mine.get beside it is slower by ~50 ms.
 */
const SETTLE_MS = 500

async function settle(app: SaltmasqApp): Promise<void> {
  await app.saltmasq.scheduler.idle()
  await sleep(SETTLE_MS)
}

/** A salt-api session of the bench's own (undici, no saltmasq code): its token. */
async function bareSession({ salt }: Lab): Promise<string> {
  const login = await request(`${salt.apiUrl}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: salt.apiUser, password: salt.apiPassword, eauth: salt.apiEauth }),
  })
  await login.body.dump()
  return login.headers['x-auth-token'] as string
}

/**
 * The floor: the two salt-api calls a sync needs (one mine.get, one apply), straight from
 * undici on a live session. Returns a function timing one pair, in milliseconds.
 */
async function saltApiFloor(lab: Lab): Promise<() => Promise<{ mine: number, apply: number }>> {
  const { salt, dns } = lab
  const sessionToken = await bareSession(lab)
  const call = async (chunk: unknown) => {
    const res = await request(`${salt.apiUrl}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-auth-token': sessionToken },
      body: JSON.stringify([chunk]),
    })
    await res.body.json()
  }
  return async () => {
    const t0 = performance.now()
    await call({ client: 'runner', fun: 'mine.get', arg: ['*', 'network.ip_addrs'] })
    const t1 = performance.now()
    await call({ client: 'local', tgt: 'dns-host', fun: 'cmd.run_all', arg: [dns.reloadScript] })
    return { mine: t1 - t0, apply: performance.now() - t1 }
  }
}

/**
 * The stream path's own floor: the same event, fired the same way, heard on salt-api's GET
 * /events by a bare undici reader (no saltmasq code), which then makes the same two calls.
 * Returns a function that fires one event and resolves with event fired → both calls done.
 */
async function eventStartedFloor(
  lab: Lab,
  floorSample: () => Promise<{ mine: number, apply: number }>,
): Promise<{ sample: () => Promise<number>, close: () => Promise<void> }> {
  const { salt } = lab
  const token = await bareSession(lab)
  const events = await request(`${salt.apiUrl}/events`, {
    headers: { 'x-auth-token': token, 'accept': 'text/event-stream' },
    bodyTimeout: 0,
    headersTimeout: 10_000,
  })
  let waiting: { tag: string, done: (at: number) => void } | null = null
  let buffered = ''
  events.body.setEncoding('utf8')
  events.body.on('data', (chunk: string) => {
    buffered = (buffered + chunk).slice(-4096)
    if (waiting !== null && buffered.includes(`tag: ${waiting.tag}`)) {
      const { done } = waiting
      waiting = null
      buffered = ''
      void floorSample().then(() => {
        done(Date.now())
      })
    }
  })
  events.body.on('error', () => undefined)
  let n = 0
  return {
    sample: async () => {
      const id = `floor${n++}`
      const finished = new Promise<number>((resolve) => {
        waiting = { tag: `saltmasq/lab/noop/${id}`, done: resolve }
      })
      const { at } = await lab.salt.load.fireCloudEvents('noop', 1, id)
      return (await finished) - at
    },
    close: async () => {
      events.body.destroy()
    },
  }
}

/**
 * For the stream rows: fires bench01's created event and resolves once the sync that applied
 * its reservation (and only its) has ended, with the time from the event and that sync's result.
 * Hooks `app` once; poll-free.
 */
function appliedOnEvent(
  app: SaltmasqApp,
  lab: Lab,
  what: string,
): () => Promise<{ fired: number, ms: number, result: SyncResult }> {
  let waiting: ((done: { at: number, result: SyncResult }) => void) | null = null
  app.saltmasq.scheduler.onSync((result) => {
    if (waiting !== null && result.applied && result.added.map((a) => a.minionId).join(',') === 'bench01')
      waiting({ at: Date.now(), result })
  })
  return async () => {
    const done = new Promise<{ at: number, result: SyncResult }>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`bench01: the event never led to ${what}`))
      }, 60_000)
      waiting = (d) => {
        clearTimeout(timer)
        waiting = null
        resolve(d)
      }
    })
    const { at: fired } = await lab.salt.load.fireCloudEvents('created', 1, 'bench01')
    const { at, result } = await done
    return { fired, ms: at - fired, result }
  }
}

export async function benchLatency(events: number): Promise<LatencyRow[]> {
  const lab = await Lab.start({ minions: [{ id: 'bench01', ips: ['10.77.0.21'] }] })
  try {
    let hookAt = 0
    let appliedAt = 0
    let appliedAtEpoch = 0
    let appliedSeen = 0
    // The reload path: every addition applied by SIGHUP (the delta files are B5's).
    const app = await lab.startSaltmasq(
      lab.saltmasqEnv('hostsfile', {
        RECONCILE_INTERVAL_S: '0',
        LOG_LEVEL: 'error',
        EVENT_STREAM: 'false',
        HOSTSFILE_DELTAS: 'false',
      }),
      pino({ level: 'error' }),
      (app) => {
        app.addHook('onRequest', async (req) => {
          if (req.url === '/hooks/salt') hookAt = performance.now()
        })
      },
    )
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
      await settle(app)
      const seen = appliedSeen
      const { at: fired } = await salt.load.fireCloudEvents('created', 1, 'bench01')
      const deadline = Date.now() + 60_000
      while (appliedSeen === seen && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2))
      if (appliedSeen === seen) throw new Error('the created event never led to an apply')
      fromHook.push(appliedAt - hookAt)
      fromEvent.push(appliedAtEpoch - fired)
    }

    const floorSample = await saltApiFloor(lab)
    const floor: number[] = []
    for (let i = 0; i < events; i++) {
      const { mine, apply } = await floorSample()
      floor.push(mine + apply)
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

/**
 * B1 through salt-api's event stream, with no reactor at all: from the event leaving for the
 * master bus to dnsmasq reloaded (hostsfile), against the floor timed in the same lab between
 * samples, and to dnsmasq answering for the new name with no apply at all (hostsdir, inotify).
 * The hostsfile samples reuse one machine (its reservation deleted before each event, as the
 * webhook rows do), so the mine is the same size for every sample and for the floor. The
 * hostsdir samples need a name dnsmasq has never held (a deleted name keeps resolving until the
 * next reload), so each is a new machine registered just before its event.
 */
export async function benchStreamLatency(events: number): Promise<LatencyRow[]> {
  const lab = await Lab.start({ minions: [{ id: 'bench01', ips: ['10.77.0.21'] }], reactor: false })
  try {
    const env = (format: 'hostsfile' | 'hostsdir') =>
      lab.saltmasqEnv(format, {
        RECONCILE_INTERVAL_S: '0',
        LOG_LEVEL: 'error',
        DNS_DOMAIN: 'lab',
        STATE_FILE: join(lab.dir, `state-${format}.json`),
        HOSTSFILE_DELTAS: 'false',
      })
    const connected = async (app: SaltmasqApp) => {
      while (app.saltmasq.stream?.state.connected !== true || app.saltmasq.scheduler.lastResult === null) await sleep(5)
      await app.saltmasq.scheduler.idle()
    }

    const reloaded: number[] = []
    const floor: number[] = []
    const floorMine: number[] = []
    const floorApply: number[] = []
    const stages = { delivery: [] as number[], mine: [] as number[], apply: [] as number[], rest: [] as number[] }
    const eventFloor: number[] = []
    const floorSample = await saltApiFloor(lab)
    const eventFloorProbe = await eventStartedFloor(lab, floorSample)
    let app = await lab.startSaltmasq(env('hostsfile'), pino({ level: 'error' }))
    const reloadedSample = appliedOnEvent(app, lab, 'an apply')
    await connected(app)
    for (let i = 0; i < events; i++) {
      await app.inject({ method: 'DELETE', url: '/reservations/bench01?wait=true', headers: lab.auth })
      await settle(app)
      const parts = await floorSample()
      floor.push(parts.mine + parts.apply)
      floorMine.push(parts.mine)
      floorApply.push(parts.apply)
      await sleep(SETTLE_MS)
      eventFloor.push(await eventFloorProbe.sample())
      await sleep(SETTLE_MS)
      const { fired, ms, result } = await reloadedSample()
      reloaded.push(ms)
      // Where this sample's time went: delivery to the sync's start, then the sync's stages.
      const st = result.stagesMs
      stages.delivery.push(Date.parse(result.startedAt) - fired)
      stages.mine.push(st.mine)
      stages.apply.push(st.apply)
      stages.rest.push(st.ledger + st.render + st.write)
      await app.saltmasq.scheduler.idle()
    }
    await eventFloorProbe.close()
    await lab.stopSaltmasq()

    // The same samples with DNSMASQ_PUBLISH=salt: the files go to dns-host in one
    // saltmasq.publish call, which writes them and sends dnsmasq its SIGHUP there.
    await lab.syncModules()
    const viaSalt: number[] = []
    const saltPublish: number[] = []
    const saltBytes: number[] = []
    app = await lab.startSaltmasq(
      { ...env('hostsfile'), DNSMASQ_PUBLISH: 'salt', STATE_FILE: join(lab.dir, 'state-salt.json') },
      pino({ level: 'error' }),
    )
    const publishedSample = appliedOnEvent(app, lab, 'a publish through Salt')
    await connected(app)
    for (let i = 0; i < events; i++) {
      await app.inject({ method: 'DELETE', url: '/reservations/bench01?wait=true', headers: lab.auth })
      await settle(app)
      await sleep(SETTLE_MS)
      const { ms, result } = await publishedSample()
      viaSalt.push(ms)
      saltPublish.push(result.stagesMs.apply)
      saltBytes.push(result.bytesSent)
      await app.saltmasq.scheduler.idle()
    }
    await lab.stopSaltmasq()

    const live: number[] = []
    app = await lab.startSaltmasq(env('hostsdir'), pino({ level: 'error' }))
    await connected(app)
    for (let i = 0; i < events; i++) {
      const [id] = await lab.salt.load.registerFakeMinions(1, `10.77.${30 + i}`, `ev${i}x`)
      const { at: fired } = await lab.salt.load.fireCloudEvents('created', 1, id!)
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
      row('floor, same lab, started by an event heard on GET /events (bare undici)', eventFloor),
      row('  where, stream: event fired → sync started (delivery)', stages.delivery),
      row('  where, stream: sync stage mine (mine.get through salt-api, parse)', stages.mine),
      row('  where, floor: mine.get', floorMine),
      row('  where, stream: sync stages ledger + render + write (state, files, owed record)', stages.rest),
      row('  where, stream: sync stage apply (through salt-api)', stages.apply),
      row('  where, floor: apply', floorApply),
      row('saltmasq: event on the bus → dnsmasq reloaded (stream, hostsfile, DNSMASQ_PUBLISH=salt)', viaSalt),
      row('  where, salt: saltmasq.publish call (delta written and dnsmasq reloaded on dns-host)', saltPublish),
      row('  bytes, salt: saltmasq.publish arguments sent for one addition', saltBytes),
      row('saltmasq: event on the bus → answering (stream, hostsdir, no apply)', live),
    ]
  } finally {
    await lab.stop()
  }
}
