// B2: a burst of N salt/cloud/<id>/created events fired within about a second on the real
// master's bus, for N machines whose addresses are in the real mine (registered by
// src/lab/scripts/fake_minions.py). saltmasq: salt-api calls counted by a pass-through proxy, wall
// time to the last reservation. The seed path: dnsmasq restarts counted for the same burst.
import { readFile } from 'node:fs/promises'
import { pino } from 'pino'
import { Lab } from '../lab/lab.js'
import { sleep } from '../lab/processes.js'
import { startSeedLab } from './seed-path.js'
import { round } from './stats.js'

export interface BurstRow {
  path: string
  kind: 'created' | 'destroyed'
  events: number
  fireSeconds: number
  /** Events that reached saltmasq (webhooks posted, or taken from the stream); null for the seed. */
  eventsReceived: number | null
  /** From the first event fired to the last one received. */
  receivedWithinS: number | null
  mineReads: number
  applies: number
  /** Reserved (created) or released (destroyed) when done. */
  done: number
  /** From the first event fired to the last reservation made or released. */
  wallSeconds: number | null
  /** From the last event fired to the last reservation made or released. */
  afterLastEventS: number | null
  note: string
}

const SUBNET = { MANAGED_SUBNETS: '10.78.0.0/16', RECONCILE_INTERVAL_S: '0', LOG_LEVEL: 'error' }

/** Polls until `done()` or `timeoutMs`; the seconds it took from `since` (performance.now()), or null. */
async function until(done: () => boolean, since: number, timeoutMs: number): Promise<number | null> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if (done()) return (performance.now() - since) / 1000
    await sleep(10)
  }
  return null
}

/** The reactor's path: every event posted by runner.http.query to the webhook. */
export async function benchBurstSaltmasq(n: number): Promise<BurstRow> {
  const lab = await Lab.start({ minions: [], proxy: true })
  try {
    await lab.salt.load.registerFakeMinions(n, '10.78.0')
    const proxy = lab.proxy!
    let hooks = 0
    let lastHookAt = 0
    const app = await lab.startSaltmasq(lab.saltmasqEnv('hostsfile', { ...SUBNET, EVENT_STREAM: 'false' }), pino({ level: 'error' }), (app) => {
      app.addHook('onRequest', async (req) => {
        if (req.url === '/hooks/salt') {
          hooks++
          lastHookAt = performance.now()
        }
      })
    })
    const { ledger, scheduler } = app.saltmasq
    proxy.calls.length = 0
    const started = performance.now()
    const { seconds } = await lab.salt.load.fireCloudEvents('created', n)
    const firedAt = performance.now()
    const wall = await until(() => ledger.current.size >= n, started, 180_000)
    const doneAt = performance.now()
    await scheduler.idle()
    // The reactor keeps posting after the reservations are done: count until all n arrived (or 60 s).
    await until(() => hooks >= n, started, 60_000)
    return {
      path: 'saltmasq, reactor webhook',
      kind: 'created',
      events: n,
      fireSeconds: round(seconds, 2),
      eventsReceived: hooks,
      receivedWithinS: hooks === 0 ? null : round((lastHookAt - started) / 1000, 2),
      mineReads: proxy.calls.filter((c) => c === 'mine.get').length,
      applies: proxy.calls.filter((c) => c === 'cmd.run_all').length,
      done: ledger.current.size,
      wallSeconds: wall === null ? null : round(wall, 2),
      afterLastEventS: wall === null ? null : round((doneAt - firedAt) / 1000, 2),
      note: 'reload (SIGHUP) through salt-api',
    }
  } finally {
    await lab.stop()
  }
}

/**
 * salt-api's event stream, no reactor: a burst of n created events, then the n machines
 * destroyed (keys deleted, as salt-cloud -d does) and a burst of n destroyed events.
 */
export async function benchBurstStream(n: number): Promise<BurstRow[]> {
  const lab = await Lab.start({ minions: [], proxy: true, reactor: false })
  try {
    const proxy = lab.proxy!
    const app = await lab.startSaltmasq(lab.saltmasqEnv('hostsfile', SUBNET), pino({ level: 'error' }))
    const { ledger, scheduler, stream, intake } = app.saltmasq
    await until(() => stream?.state.connected === true && scheduler.lastResult !== null, performance.now(), 60_000)
    await scheduler.idle()
    // Registered once the stream's connect-time sync is done: only their events can reserve them.
    await lab.salt.load.registerFakeMinions(n, '10.78.0')
    const rows: BurstRow[] = []
    for (const kind of ['created', 'destroyed'] as const) {
      if (kind === 'destroyed') await lab.salt.deleteKeys(['vm*'])
      await scheduler.idle()
      proxy.calls.length = 0
      const before = intake.counts.stream.accepted
      const received = () => intake.counts.stream.accepted - before
      const done = () => (kind === 'created' ? ledger.current.size : n - ledger.current.size)
      const started = performance.now()
      let lastReceivedAt = started
      const watch = setInterval(() => { if (received() < n) lastReceivedAt = performance.now() }, 5)
      const { seconds } = await lab.salt.load.fireCloudEvents(kind, n)
      const firedAt = performance.now()
      const wall = await until(() => done() >= n, started, 180_000)
      const doneAt = performance.now()
      await until(() => received() >= n, started, 60_000)
      clearInterval(watch)
      await scheduler.idle()
      rows.push({
        path: 'saltmasq, event stream',
        kind,
        events: n,
        fireSeconds: round(seconds, 2),
        eventsReceived: received(),
        receivedWithinS: round((lastReceivedAt - started) / 1000, 2),
        mineReads: proxy.calls.filter((c) => c === 'mine.get').length,
        applies: proxy.calls.filter((c) => c === 'cmd.run_all').length,
        done: done(),
        wallSeconds: wall === null ? null : round(wall, 2),
        afterLastEventS: wall === null ? null : round((doneAt - firedAt) / 1000, 2),
        note: 'reload (SIGHUP) through salt-api',
      })
    }
    return rows
  } finally {
    await lab.stop()
  }
}

export async function benchBurstSeed(n: number, capSeconds: number): Promise<BurstRow> {
  // Without a cap, 200 simultaneous cmd.script jobs would each load a Caller (~100 MB): the
  // dnsmasq minion runs at most 8 jobs at once, the rest queue.
  const lab = await startSeedLab([], ['process_count_max: 8'])
  const { dns } = lab
  try {
    await lab.salt.load.registerFakeMinions(n, '10.78.0')
    const started = performance.now()
    const fireSeconds = (await lab.salt.load.fireCloudEvents('created', n)).seconds
    let done: number | null = null
    const deadline = Date.now() + capSeconds * 1000
    while (Date.now() < deadline) {
      if (await dns.restarts() >= n) {
        done = (performance.now() - started) / 1000
        break
      }
      await sleep(200)
    }
    const restarts = await dns.restarts()
    const text = await readFile(dns.reservationsConf, 'utf8').catch(() => '')
    return {
      path: 'seed (cmd.script per event)',
      kind: 'created',
      events: n,
      fireSeconds: round(fireSeconds, 2),
      eventsReceived: null,
      receivedWithinS: null,
      mineReads: restarts,
      applies: restarts,
      done: text.split('\n').filter((l) => l.startsWith('dhcp-host=vm')).length,
      wallSeconds: done === null ? null : round(done, 2),
      afterLastEventS: null,
      note: done === null ? `${restarts} restarts within the ${capSeconds} s cap` : 'restart per event',
    }
  } finally {
    await lab.stop()
  }
}

export async function benchSeedLatency(events: number): Promise<number[]> {
  const lab = await startSeedLab([{ id: 'bench01', ips: ['10.77.0.21'] }])
  const { dns } = lab
  try {
    const samples: number[] = []
    for (let i = 0; i < events; i++) {
      const before = await dns.restarts()
      const { at } = await lab.salt.load.fireCloudEvents('created', 1, 'bench01')
      const deadline = Date.now() + 120_000
      while (await dns.restarts() === before && Date.now() < deadline) await sleep(5)
      // The restart script logs before it starts dnsmasq again: wait for the new dnsmasq.
      while (await dns.pid() === undefined && Date.now() < deadline) await sleep(5)
      if (Date.now() >= deadline) throw new Error('the seed path never restarted dnsmasq')
      samples.push(Date.now() - at)
    }
    return samples
  } finally {
    await lab.stop()
  }
}
