// B2: a burst of N salt/cloud/<id>/created events fired within about a second on the real
// master's bus, for N machines whose addresses are in the real mine (registered by
// src/lab/scripts/fake_minions.py). saltmasq: salt-api calls counted by a pass-through proxy, wall
// time to the last reservation. The seed path: dnsmasq restarts counted for the same burst.
import { readFile } from 'node:fs/promises'
import { pino } from 'pino'
import { Lab } from '../src/lab/lab.js'
import { sleep } from '../src/lab/processes.js'
import { startSeedLab } from './seed-path.js'
import { round } from './stats.js'

export interface BurstRow {
  path: string
  events: number
  fireSeconds: number
  webhooksReceived: number | null
  mineReads: number
  applies: number
  reserved: number
  wallSeconds: number | null
  note: string
}

async function registerAndFire (lab: Lab, n: number): Promise<{ fire: () => Promise<number> }> {
  await lab.salt.registerFakeMinions(n, '10.78.0')
  return {
    fire: async () => (await lab.salt.fireCloudEvents('created', n)).seconds,
  }
}

export async function benchBurstSaltmasq (n: number): Promise<BurstRow> {
  const lab = await Lab.start({ minions: [], proxy: true })
  try {
    const { fire } = await registerAndFire(lab, n)
    const proxy = lab.proxy!
    let hooks = 0
    const app = await lab.startSaltmasq(
      lab.saltmasqEnv('hostsfile', { MANAGED_SUBNETS: '10.78.0.0/16', RECONCILE_INTERVAL_S: '0', LOG_LEVEL: 'error', EVENT_STREAM: 'false' }),
      pino({ level: 'error' }),
      (app) => app.addHook('onRequest', async (req) => { if (req.url === '/hooks/salt') hooks++ }),
    )
    const { ledger, scheduler } = app.saltmasq
    const started = performance.now()
    const fireSeconds = await fire()
    let done: number | null = null
    const deadline = Date.now() + 180_000
    while (Date.now() < deadline) {
      if (ledger.current.size >= n) {
        done = (performance.now() - started) / 1000
        break
      }
      await sleep(20)
    }
    await scheduler.idle()
    return {
      path: 'saltmasq',
      events: n,
      fireSeconds: round(fireSeconds, 2),
      webhooksReceived: hooks,
      mineReads: proxy.calls.filter((c) => c === 'mine.get').length,
      applies: proxy.calls.filter((c) => c === 'cmd.run_all').length,
      reserved: ledger.current.size,
      wallSeconds: done === null ? null : round(done, 2),
      note: 'reload (SIGHUP) through salt-api',
    }
  } finally {
    await lab.stop()
  }
}

export async function benchBurstSeed (n: number, capSeconds: number): Promise<BurstRow> {
  // Without a cap, 200 simultaneous cmd.script jobs would each load a Caller (~100 MB): the
  // dnsmasq minion runs at most 8 jobs at once, the rest queue.
  const lab = await startSeedLab([], ['process_count_max: 8'])
  const { dns } = lab
  try {
    const { fire } = await registerAndFire(lab, n)
    const started = performance.now()
    const fireSeconds = await fire()
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
      events: n,
      fireSeconds: round(fireSeconds, 2),
      webhooksReceived: null,
      mineReads: restarts,
      applies: restarts,
      reserved: text.split('\n').filter((l) => l.startsWith('dhcp-host=vm')).length,
      wallSeconds: done === null ? null : round(done, 2),
      note: done === null ? `${restarts} restarts within the ${capSeconds} s cap` : 'restart per event',
    }
  } finally {
    await lab.stop()
  }
}

export async function benchSeedLatency (events: number): Promise<number[]> {
  const lab = await startSeedLab([{ id: 'bench01', ips: ['10.77.0.21'] }])
  const { dns } = lab
  try {
    const samples: number[] = []
    for (let i = 0; i < events; i++) {
      const before = await dns.restarts()
      const { at } = await lab.salt.fireCloudEvents('created', 1, 'bench01')
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
