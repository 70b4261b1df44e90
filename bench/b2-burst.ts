// B2: a burst of N salt/cloud/<id>/created events fired within about a second on the real
// master's bus, for N machines whose addresses are in the real mine (registered by
// bench/seed/fake_minions.py). saltmasq: salt-api calls counted by a pass-through proxy, wall
// time to the last reservation. The seed path: dnsmasq restarts counted for the same burst.
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { buildApp } from '../src/app.js'
import { DelayProxy } from '../test/harness/delay-proxy.js'
import { LoopbackDnsmasq } from '../test/harness/loopback-dnsmasq.js'
import { repoRoot, venvBin } from '../test/harness/paths.js'
import { freePort, mustRun, sleep } from '../test/harness/processes.js'
import { SaltLab } from '../test/harness/salt-lab.js'
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

const LAB_MINIONS = [{ id: 'dns-host', ips: ['127.0.0.1'] }]

/** Fires `count` created events (or one for `minionId`); returns when the first left (epoch ms) and how long the firing took. */
export async function fireEvents (lab: SaltLab, count: number, minionId?: string): Promise<{ at: number, seconds: number }> {
  const out = await mustRun(join(venvBin, 'python3'), [join(repoRoot, 'bench', 'seed', 'fire_burst.py'), join(lab.masterConf, 'master'), String(count), ...(minionId === undefined ? [] : [minionId])])
  const [at, seconds] = out.trim().split(' ').map(Number) as [number, number]
  return { at: at * 1000, seconds }
}

async function registerAndFire (lab: SaltLab, tmp: string, n: number): Promise<{ fire: () => Promise<number> }> {
  await mustRun(join(venvBin, 'python3'), [join(repoRoot, 'bench', 'seed', 'fake_minions.py'), lab.minionConfig('dns-host'), join(tmp, 'fake'), String(n), '10.78.0'], { timeoutMs: 600_000 })
  return {
    fire: async () => (await fireEvents(lab, n)).seconds,
  }
}

export async function benchBurstSaltmasq (n: number): Promise<BurstRow> {
  const tmp = await mkdtemp(join(tmpdir(), 'smq-b2-'))
  const token = randomBytes(24).toString('hex')
  const dns = await LoopbackDnsmasq.start(join(tmp, 'dns'))
  const port = await freePort()
  let lab: SaltLab | undefined
  let proxy: DelayProxy | undefined
  let app: Awaited<ReturnType<typeof buildApp>> | undefined
  try {
    lab = await SaltLab.start({
      minions: LAB_MINIONS,
      webhookUrl: `http://127.0.0.1:${port}/hooks/salt`,
      webhookToken: token,
      extraPermissions: ["      - 'dns-host':", '        - cmd.run_all:', '            args:', `              - ${dns.reloadScript}`].join('\n'),
    })
    const { fire } = await registerAndFire(lab, tmp, n)
    proxy = await DelayProxy.start(lab.apiUrl)
    app = await buildApp({
      env: {
        ...lab.saltApiEnv, SALT_API_URL: proxy.url, WEBHOOK_TOKEN: token, MANAGED_SUBNETS: '10.78.0.0/16', RESERVATIONS_FORMAT: 'hostsfile', DHCP_HOSTSFILE: dns.dhcpHostsFile, ADDN_HOSTS_FILE: dns.addnHostsFile,
        STATE_FILE: join(tmp, 'state.json'), DNSMASQ_MINION: 'dns-host', DNSMASQ_APPLY_FUNCTION: 'cmd.run_all', DNSMASQ_APPLY_ARGS: JSON.stringify([dns.reloadScript]),
        DNSMASQ_RELEASE_FUNCTION: '', RECONCILE_INTERVAL_S: '0', LOG_LEVEL: 'error',
      },
      logger: pino({ level: 'error' }),
    })
    let hooks = 0
    app.addHook('onRequest', async (req) => { if (req.url === '/hooks/salt') hooks++ })
    await app.listen({ host: '127.0.0.1', port })
    const started = performance.now()
    const fireSeconds = await fire()
    let done: number | null = null
    const deadline = Date.now() + 180_000
    while (Date.now() < deadline) {
      if (app.saltmasq.engine.reservations.length >= n) {
        done = (performance.now() - started) / 1000
        break
      }
      await sleep(20)
    }
    await app.saltmasq.engine.idle()
    return {
      path: 'saltmasq',
      events: n,
      fireSeconds: round(fireSeconds, 2),
      webhooksReceived: hooks,
      mineReads: proxy.calls.filter((c) => c === 'mine.get').length,
      applies: proxy.calls.filter((c) => c === 'cmd.run_all').length,
      reserved: app.saltmasq.engine.reservations.length,
      wallSeconds: done === null ? null : round(done, 2),
      note: 'reload (SIGHUP) through salt-api',
    }
  } finally {
    await app?.close()
    await proxy?.close()
    await lab?.stop()
    await dns.stop()
    await rm(tmp, { recursive: true, force: true })
  }
}

export async function benchBurstSeed (n: number, capSeconds: number): Promise<BurstRow> {
  const tmp = await mkdtemp(join(tmpdir(), 'smq-b2s-'))
  const dns = await LoopbackDnsmasq.start(join(tmp, 'dns'))
  let lab: SaltLab | undefined
  try {
    // Without a cap, 200 simultaneous cmd.script jobs would each load a Caller (~100 MB): the
    // dnsmasq minion runs at most 8 jobs at once, the rest queue.
    lab = await startSeedLab(tmp, dns, [{ id: 'dns-host', ips: ['127.0.0.1'], extraConfig: ['process_count_max: 8'] }])
    const { fire } = await registerAndFire(lab, tmp, n)
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
    await lab?.stop()
    await dns.stop()
    await rm(tmp, { recursive: true, force: true })
  }
}

export async function benchSeedLatency (events: number): Promise<number[]> {
  const tmp = await mkdtemp(join(tmpdir(), 'smq-b1s-'))
  const dns = await LoopbackDnsmasq.start(join(tmp, 'dns'))
  let lab: SaltLab | undefined
  try {
    lab = await startSeedLab(tmp, dns, [...LAB_MINIONS, { id: 'bench01', ips: ['10.77.0.21'] }])
    const samples: number[] = []
    for (let i = 0; i < events; i++) {
      const before = await dns.restarts()
      const { at } = await fireEvents(lab, 1, 'bench01')
      const deadline = Date.now() + 120_000
      while (await dns.restarts() === before && Date.now() < deadline) await sleep(5)
      // The restart script logs before it starts dnsmasq again: wait for the new dnsmasq.
      while (await dns.pid() === undefined && Date.now() < deadline) await sleep(5)
      if (Date.now() >= deadline) throw new Error('the seed path never restarted dnsmasq')
      samples.push(Date.now() - at)
    }
    return samples
  } finally {
    await lab?.stop()
    await dns.stop()
    await rm(tmp, { recursive: true, force: true })
  }
}
