// B4: webhook accept throughput. autocannon posts an authenticated, realistic created event to
// saltmasq's /hooks/salt (its own process, against a loopback salt-api), and the same body to a
// bare Fastify route answering 202, in the same run, one after the other.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { repoRoot } from '../lab/paths.js'
import { freePort, startDaemon, stopDaemon, waitFor } from '../lab/processes.js'
import { SaltApiStandIn } from '../lab/salt-api-standin.js'
import { SaltmasqProcess } from '../lab/saltmasq-process.js'
import { median, round } from './stats.js'

const TOKEN = 'bench-webhook-token-0123456789abcdefghij'
const BODY = JSON.stringify({
  tag: 'salt/cloud/web01.example.com/created',
  data: { name: 'web01.example.com', profile: 'centos-small', provider: 'vsphere:vmware', driver: 'vmware', event: 'created instance', _stamp: '2026-11-25T10:00:00.000000' },
})

export interface AcceptRow {
  target: string
  runs: number
  durationS: number
  requestsPerSec: number
  latencyP50Ms: number
  latencyP99Ms: number
  non2xx: number
}

async function hammer(url: string, durationS: number): Promise<autocannon.Result> {
  return await autocannon({
    url: `${url}/hooks/salt`,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'authorization': `Bearer ${TOKEN}` },
    body: BODY,
    connections: 50,
    duration: durationS,
  })
}

export async function benchAccept(durationS: number, runs: number): Promise<AcceptRow[]> {
  const dir = await mkdtemp(join(tmpdir(), 'smq-b4-'))
  const salt = await SaltApiStandIn.listening({ 'web01.example.com': ['10.0.0.5'] })
  const svc = await SaltmasqProcess.start({
    ...salt.env,
    WEBHOOK_TOKEN: TOKEN,
    MANAGED_SUBNETS: '10.0.0.0/8',
    RESERVATIONS_FORMAT: 'hostsfile', DHCP_HOSTSFILE: join(dir, 'dhcp-hosts'), DHCP_HOSTSDIR: join(dir, 'dhcp-hosts.d'), DNS_HOSTSDIR: join(dir, 'hosts.d'),
    ADDN_HOSTS_FILE: join(dir, 'addn-hosts'),
    STATE_FILE: join(dir, 'state.json'),
    DNSMASQ_MINION: 'dns',
    HOOK_RATE_LIMIT: '100000000',
    RECONCILE_INTERVAL_S: '0',
    EVENT_STREAM: 'false',
    LOG_LEVEL: 'warn',
  }, join(dir, 'saltmasq.log'))
  const barePort = await freePort()
  const bare = startDaemon('bare fastify', process.execPath, [join(repoRoot, 'dist', 'bench', 'bare-server.js')], join(dir, 'bare.log'), { ...process.env, PORT: String(barePort) })
  const bareUrl = `http://127.0.0.1:${barePort}`
  try {
    await waitFor('bare fastify', async () => (await fetch(`${bareUrl}/hooks/salt`, { method: 'POST' }).then((r) => r.status, () => 0)) === 202, 10_000, 50)
    const results: Record<string, autocannon.Result[]> = { saltmasq: [], bare: [] }
    for (let r = 0; r < runs; r++) {
      // Alternate so that neither side always runs on a warmer machine.
      results.bare!.push(await hammer(bareUrl, durationS))
      results.saltmasq!.push(await hammer(svc.url, durationS))
    }
    return Object.entries(results).map(([target, list]) => ({
      target: target === 'bare' ? 'bare Fastify (202)' : 'saltmasq POST /hooks/salt',
      runs,
      durationS,
      requestsPerSec: round(median(list.map((x) => x.requests.average)), 0),
      latencyP50Ms: round(median(list.map((x) => x.latency.p50))),
      latencyP99Ms: round(median(list.map((x) => x.latency.p99))),
      non2xx: list.reduce((sum, x) => sum + x.non2xx, 0),
    }))
  } finally {
    await stopDaemon(bare)
    await svc.stop()
    await salt.close()
    await rm(dir, { recursive: true, force: true })
  }
}
