// B3: how a sync's cost grows with the fleet. saltmasq runs as its own process against a
// loopback salt-api serving a synthetic mine of N minions; each sync stage is timed by
// saltmasq itself (stagesMs), peak RSS is read from /proc: through the syncs, and apart from
// them while one GET /reservations lists every reservation. Then the cost on dnsmasq's side:
// real dnsmasq (DHCP + DNS, in a network namespace) re-reading a hostsfile of N lines after
// SIGHUP, and starting with it.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LineRenderer } from '../src/dnsmasq/lines.js'
import type { Reservation } from '../src/ledger/ledger.js'
import { DhcpDnsmasq } from '../lab/dhcp-dnsmasq.js'
import { SaltApiStandIn } from '../lab/salt-api-standin.js'
import { NetLab } from '../lab/netns.js'
import { waitFor } from '../lab/processes.js'
import { SaltmasqProcess } from '../lab/saltmasq-process.js'
import { median, peakRssMb, round } from './stats.js'
import { syntheticMine } from './synthetic-mine.js'

export interface ScaleRow {
  minions: number
  runs: number
  firstSyncMs: { mine: number, ledger: number, render: number, write: number, total: number }
  steadySyncMs: { mine: number, ledger: number, render: number, write: number, compute: number }
  /** Peak RSS through the first sync and three steady syncs. */
  peakRssMb: number
  /** Peak RSS once one GET /reservations has listed every reservation as well. */
  listingPeakRssMb: number
  reservations: number
  conflicts: number
  skipped: number
  dnsmasqReloadMs: number
  dnsmasqStartMs: number
}

interface Stages {
  mine: number
  ledger: number
  render: number
  write: number
  apply: number
}

/** A first sync's stages from /metrics: after one sync, each stage histogram's sum is that sync's. */
function stagesFromMetrics(text: string): Stages {
  const ms = (stage: string): number =>
    1000
    * Number(
      new RegExp(`^saltmasq_sync_stage_duration_seconds_sum\\{stage="${stage}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN,
    )
  return { mine: ms('mine'), ledger: ms('ledger'), render: ms('render'), write: ms('write'), apply: ms('apply') }
}

async function saltmasqAt(
  n: number,
  runs: number,
  dir: string,
): Promise<Omit<ScaleRow, 'dnsmasqReloadMs' | 'dnsmasqStartMs'>> {
  const mine = syntheticMine(n)
  const salt = await SaltApiStandIn.listening(mine)
  const firsts: Stages[] = []
  const steadies: Stages[] = []
  let rss = 0
  let listingRss = 0
  let last = { reservations: 0, conflicts: 0, skipped: 0 }
  try {
    for (let r = 0; r < runs; r++) {
      const runDir = join(dir, `n${n}-r${r}`)
      const svc = await SaltmasqProcess.start(
        {
          ...salt.env,
          WEBHOOK_TOKEN: 'bench-webhook-token-0123456789abcdefghij',
          MANAGED_SUBNETS: '10.0.0.0/14',
          RESERVATIONS_FORMAT: 'hostsfile',
          DHCP_HOSTSFILE: join(runDir, 'dhcp-hosts'),
          DHCP_HOSTSDIR: join(runDir, 'dhcp-hosts.d'),
          DNS_HOSTSDIR: join(runDir, 'hosts.d'),
          ADDN_HOSTS_FILE: join(runDir, 'addn-hosts'),
          STATE_FILE: join(runDir, 'state.json'),
          DNSMASQ_MINION: 'dns',
          RECONCILE_INTERVAL_S: '0',
          EVENT_STREAM: 'false',
          LOG_LEVEL: 'error',
        },
        join(dir, 'saltmasq.log'),
      )
      try {
        // saltmasq syncs once as it starts: that is the first sync. /ready turns 200 when one
        // has worked, and /metrics has its stages (polling GET /reservations instead would
        // measure its listings). The full listing comes last: V8 keeps the pages it grew.
        await waitFor(
          `the first sync at ${n}`,
          async () => (await svc.request('GET', '/ready')).status === 200,
          600_000,
          50,
        )
        firsts.push(stagesFromMetrics((await svc.request('GET', '/metrics')).body as string))
        for (let s = 0; s < 3; s++) steadies.push((await svc.request('POST', '/resync?wait=true')).body.stagesMs)
        rss = Math.max(rss, await peakRssMb(svc.pid))
        const listed = (await svc.request('GET', '/reservations')).body as {
          reservations: unknown[]
          lastSync: { conflicts: unknown[], skipped: unknown[] }
        }
        listingRss = Math.max(listingRss, await peakRssMb(svc.pid))
        last = {
          reservations: listed.reservations.length,
          conflicts: listed.lastSync.conflicts.length,
          skipped: listed.lastSync.skipped.length,
        }
      } finally {
        await svc.stop()
      }
    }
  } finally {
    await salt.close()
  }
  const m = (list: Stages[], key: keyof Stages) => round(median(list.map((s) => s[key])))
  return {
    minions: n,
    runs,
    firstSyncMs: {
      mine: m(firsts, 'mine'),
      ledger: m(firsts, 'ledger'),
      render: m(firsts, 'render'),
      write: m(firsts, 'write'),
      total: round(median(firsts.map((s) => s.mine + s.ledger + s.render + s.write))),
    },
    steadySyncMs: {
      mine: m(steadies, 'mine'),
      ledger: m(steadies, 'ledger'),
      render: m(steadies, 'render'),
      write: m(steadies, 'write'),
      compute: round(median(steadies.map((s) => s.ledger + s.render))),
    },
    peakRssMb: rss,
    listingPeakRssMb: listingRss,
    ...last,
  }
}

// Runs inside the namespace: SIGHUP dnsmasq, then ask for the last name until it answers.
const RELOAD_PROBE = `
const { Resolver } = require('node:dns/promises')
const [pid, name, mode] = process.argv.slice(1)
const r = new Resolver({ timeout: 50, tries: 1 }); r.setServers(['10.99.0.1'])
const t0 = process.hrtime.bigint()
if (mode === 'hup') process.kill(Number(pid), 'SIGHUP')
;(async () => {
  for (let i = 0; i < 200000; i++) {
    try { const a = await r.resolve4(name); if (a.length > 0) break } catch {}
  }
  process.stdout.write(String(Number(process.hrtime.bigint() - t0) / 1e6))
})()
`

async function dnsmasqAt(n: number, runs: number, dir: string): Promise<{ reloadMs: number, startMs: number }> {
  await mkdir(dir, { recursive: true })
  const net = await NetLab.create(dir)
  const dns = new DhcpDnsmasq(net.master, join(dir, 'dnsmasq'))
  try {
    await dns.writeConfig({ first: '10.99.0.100', last: '10.99.0.200' }, 'lab')
    const stamp = new Date().toISOString()
    const list: Reservation[] = Array.from({ length: n }, (_, k) => ({
      minionId: `node${k}`,
      ip: `10.${k >> 16}.${(k >> 8) & 255}.${k & 255}`,
      firstSeen: stamp,
      lastSeen: stamp,
    }))
    const files = new LineRenderer({ domain: 'lab' }).hostsFiles(list)
    await writeFile(
      join(dns.confDir, 'saltmasq.conf'),
      `dhcp-hostsfile=${dns.dhcpHostsFile}\naddn-hosts=${dns.addnHostsFile}\n`,
    )
    await rm(dns.hostsDir, { recursive: true, force: true })
    await mkdir(dns.hostsDir, { recursive: true })
    await writeFile(dns.dhcpHostsFile, '')
    await writeFile(dns.addnHostsFile, '')
    const probeName = `node${n - 1}.lab`
    const starts: number[] = []
    const reloads: number[] = []
    for (let r = 0; r < runs; r++) {
      // Start with N entries: from launch until the last name answers.
      await writeFile(dns.dhcpHostsFile, files.dhcpHosts!)
      await writeFile(dns.addnHostsFile, files.addnHosts!)
      await dns.stop()
      const t0 = performance.now()
      const pid = await dns.start()
      await net.master.mustRun(process.execPath, ['-e', RELOAD_PROBE, String(pid), probeName, 'wait'], {
        timeoutMs: 300_000,
      })
      starts.push(performance.now() - t0)
      // Reload: files rewritten with the same N entries, SIGHUP, until the last name answers.
      await writeFile(dns.addnHostsFile, files.addnHosts!)
      reloads.push(
        Number(
          await net.master.mustRun(process.execPath, ['-e', RELOAD_PROBE, String(pid), probeName, 'hup'], {
            timeoutMs: 300_000,
          }),
        ),
      )
    }
    return { reloadMs: round(median(reloads)), startMs: round(median(starts)) }
  } finally {
    await dns.stop()
    await net.destroy()
  }
}

export async function benchScale(sizes: number[], runs: number): Promise<ScaleRow[]> {
  const dir = await mkdtemp(join(tmpdir(), 'smq-b3-'))
  const rows: ScaleRow[] = []
  try {
    for (const n of sizes) {
      const s = await saltmasqAt(n, runs, dir)
      const d = await dnsmasqAt(n, runs, join(dir, `dns-${n}`))
      rows.push({ ...s, dnsmasqReloadMs: d.reloadMs, dnsmasqStartMs: d.startMs })
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  return rows
}
