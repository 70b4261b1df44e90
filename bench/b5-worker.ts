// B5's measuring half; runs inside the lab's network namespace (b5-formats.ts starts it there)
// so it can query the dnsmasq it starts on the bridge. For one format and one fleet size it
// starts a real dnsmasq (DHCP + DNS) already holding N reservations, drives saltmasq's own
// publisher (files written by saltmasq's writer; the apply that salt-api would run on the
// dnsmasq minion is done here directly: SIGHUP for a reload, stop + start for a restart) and
// watches dnsmasq from outside with DNS queries. dnsmasq has one thread: while it re-reads its
// files it answers neither DNS nor DHCP, so the gap between two answers is how long both stop.
import { Resolver } from 'node:dns/promises'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pino } from 'pino'
import { loadConfig, type FormatName } from '../src/config/index.js'
import { LineRenderer } from '../src/dnsmasq/lines.js'
import { openPublisher } from '../src/dnsmasq/open-publisher.js'
import type { Published } from '../src/dnsmasq/publisher.js'
import type { Reservation } from '../src/ledger/ledger.js'
import { systemClock } from '../src/util/clock.js'
import { DhcpDnsmasq } from '../lab/dhcp-dnsmasq.js'
import { Namespace } from '../lab/netns.js'
import { livePid, mustRun } from '../lab/processes.js'
import { median, round } from './stats.js'

export interface WorkerArgs {
  format: FormatName
  /** hostsfile: additions as delta files (HOSTSFILE_DELTAS), removals compacted by SIGHUP. */
  deltas?: boolean
  n: number
  dir: string
  ns: string
  samples: number
  burst: number
}

export interface WorkerResult {
  /** The format, and `hostsfile+deltas` for HOSTSFILE_DELTAS. */
  format: string
  n: number
  /** Median over `samples` single additions: saltmasq's write stage (atomic writes, fsyncs). */
  writeMs: number
  /**
   * Median over the same additions: from the write stage done to dnsmasq answering for the new name
   * (apply included).
   */
  liveMs: number
  liveMaxMs: number
  /** The longest gap between two answers while a burst of additions is published and taken in. */
  addBurstStallMs: number
  /** The same for one publish removing `burst` reservations. */
  deleteBatchStallMs: number
  /** dnsmasq told to re-read or restart during the addition burst (0 for hostsdir). */
  addBurstApplies: number
  /** Whether the deletions were applied (reload or restart) within the measurement. */
  deleteApplied: boolean
  startMs: number
}

const DNS_IP = '10.99.0.1'
const stamp = new Date().toISOString()
const reservation = (minionId: string, ip: string): Reservation => ({ minionId, ip, firstSeen: stamp, lastSeen: stamp })

function resolver(timeoutMs: number): Resolver {
  const r = new Resolver({ timeout: timeoutMs, tries: 1 })
  r.setServers([DNS_IP])
  return r
}

async function answers(r: Resolver, name: string): Promise<boolean> {
  try {
    return (await r.resolve4(name)).length > 0
  } catch {
    return false
  }
}

/** Asks for `name` back to back until stopped; the longest time between two answers is the stall. */
class StallMonitor {
  #running = true
  #last = performance.now()
  #maxGap = 0
  readonly #loop: Promise<void>

  constructor(name: string) {
    // A query lost as dnsmasq restarts would hold the loop until its timeout: keep it short.
    const r = resolver(1000)
    this.#loop = (async () => {
      while (this.#running) {
        if (await answers(r, name)) {
          const now = performance.now()
          this.#maxGap = Math.max(this.#maxGap, now - this.#last)
          this.#last = now
        } else {
          // Refused while dnsmasq restarts: try again shortly, the gap keeps growing.
          await new Promise((resolve) => setTimeout(resolve, 1))
        }
      }
    })()
  }

  /**
   * `answeredAt`: when dnsmasq was last seen answering (another resolver's success). If this
   * loop's own query was lost (a restart) it has not seen that answer: the gap runs until then.
   */
  async stop(answeredAt: number): Promise<number> {
    if (answeredAt > this.#last) this.#maxGap = Math.max(this.#maxGap, answeredAt - this.#last)
    this.#running = false
    await this.#loop
    return round(this.#maxGap)
  }
}

/** Polls `probe` until it holds; returns when it did (performance.now()). */
async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 900_000): Promise<number> {
  const deadline = performance.now() + timeoutMs
  while (!(await probe())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
  }
  return performance.now()
}

/** What service.restart does: stop, wait for the exit, start; polled tightly so the harness adds no time. */
async function restart(pid: number, dns: DhcpDnsmasq): Promise<number> {
  process.kill(pid, 'SIGTERM')
  while ((await livePid(dns.pidFile)) === pid) await new Promise((resolve) => setTimeout(resolve, 2))
  await mustRun('dnsmasq', [`--conf-file=${dns.confFile}`])
  for (;;) {
    const next = await livePid(dns.pidFile)
    if (next !== undefined && next !== pid) return next
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

async function main(args: WorkerArgs): Promise<WorkerResult> {
  const { format, n, dir } = args
  const dns = new DhcpDnsmasq(new Namespace(args.ns), join(dir, 'dnsmasq'))
  await dns.writeConfig({ first: '10.99.0.100', last: '10.99.0.200' }, 'lab')
  const env = {
    SALT_API_URL: 'http://127.0.0.1:1',
    SALT_API_USER: 'u',
    SALT_API_PASSWORD: 'p',
    WEBHOOK_TOKEN: 'x'.repeat(32),
    MANAGED_SUBNETS: '10.0.0.0/8',
    DNSMASQ_MINION: 'dns',
    DNS_DOMAIN: 'lab',
    RESERVATIONS_FORMAT: format,
    RESERVATIONS_FILE: join(dns.confDir, 'reservations.conf'),
    DHCP_HOSTSFILE: dns.dhcpHostsFile,
    ADDN_HOSTS_FILE: dns.addnHostsFile,
    DHCP_HOSTSDIR: dns.dhcpHostsDir,
    DNS_HOSTSDIR: dns.dnsHostsDir,
    STATE_FILE: join(dir, 'state.json'),
    DNSMASQ_TEST_FUNCTION: '',
    DNSMASQ_RELEASE_FUNCTION: '',
    HOSTSFILE_DELTAS: String(args.deltas === true),
  }
  const config = loadConfig(env)

  // The fleet already there: written straight to disk (set-up, not measured).
  const fleet = Array.from({ length: n }, (_, k) =>
    reservation(`node${k}`, `10.${k >> 16}.${(k >> 8) & 255}.${k & 255}`),
  )
  await rm(dns.hostsDir, { recursive: true, force: true })
  await mkdir(dns.dhcpHostsDir, { recursive: true })
  await mkdir(dns.dnsHostsDir, { recursive: true })
  if (format === 'hostsdir') {
    await writeFile(
      join(dns.confDir, 'saltmasq.conf'),
      `dhcp-hostsdir=${dns.dhcpHostsDir}\nhostsdir=${dns.dnsHostsDir}\n`,
    )
    const entries = new LineRenderer({ domain: 'lab' }).entries(fleet)
    for (const [kind, path] of [
      ['dhcpHosts', dns.dhcpHostsDir],
      ['dnsHosts', dns.dnsHostsDir],
    ] as const) {
      const list = [...entries[kind]]
      for (let i = 0; i < list.length; i += 256)
        await Promise.all(
          list.slice(i, i + 256).map(async ([name, text]) => {
            await writeFile(join(path, name), text)
          }),
        )
    }
  } else if (format === 'hostsfile') {
    await writeFile(
      join(dns.confDir, 'saltmasq.conf'),
      `dhcp-hostsfile=${dns.dhcpHostsFile}\naddn-hosts=${dns.addnHostsFile}\n${args.deltas === true ? `dhcp-hostsdir=${dns.dhcpHostsDir}\n` : ''}`,
    )
    const files = new LineRenderer({ domain: 'lab' }).hostsFiles(fleet)
    await writeFile(dns.dhcpHostsFile, files.dhcpHosts)
    await writeFile(dns.addnHostsFile, files.addnHosts)
  } else {
    // conf format puts names in DNS only through leases (the seed's way); the fleet's names get
    // an addn-hosts of their own so the stall monitor has a name to ask for.
    const fleetHosts = join(dir, 'fleet-hosts')
    await writeFile(fleetHosts, new LineRenderer({ domain: 'lab' }).hostsFiles(fleet).addnHosts)
    await writeFile(join(dns.confDir, 'saltmasq.conf'), `addn-hosts=${fleetHosts}\n`)
    await writeFile(config.files.conf, new LineRenderer().confFile(fleet))
  }
  const probe = resolver(200)
  const started = performance.now()
  let pid = await dns.start()
  await until('dnsmasq to answer for the last of the fleet', async () => await answers(probe, `node${n - 1}.lab`))
  const startMs = round(performance.now() - started)

  let applies = 0
  const client = {
    async local(): Promise<Record<string, unknown>> {
      applies++
      if (format === 'conf') pid = await restart(pid, dns)
      else process.kill(pid, 'SIGHUP')
      return { dns: true }
    },
  }
  const publisher = await openPublisher({ config, client, logger: pino({ level: 'silent' }), clock: systemClock })
  const current = [...fleet]
  const publish = async (): Promise<Published> => await publisher.publish(current)
  // Bring the publisher's view in line with the disk (no change in dnsmasq).
  await publish()
  // When is a reservation live? hostsdir and hostsfile: its name answers. conf: dnsmasq reads
  // dhcp-host lines only at start, and puts names in DNS only with a lease: once the restarted
  // dnsmasq answers again, it holds the reservation.
  const isLive = async (r: Resolver, name: string): Promise<boolean> =>
    await answers(r, format === 'conf' ? 'node0.lab' : `${name}.lab`)
  // hostsfile+deltas: a new name is in DNS only with a lease. The DHCP reservation is in force
  // once dnsmasq has read the delta file (its log says so) and answers again (one thread).
  const deltaLive = async (r: Resolver, published: Published): Promise<boolean> => {
    const file = published.filesChanged[0]
    if (file === undefined) throw new Error('the addition wrote no delta file')
    return (await dns.log()).includes(`read ${file}`) && (await answers(r, 'node0.lab'))
  }

  const live: number[] = []
  const writes: number[] = []
  for (let i = 0; i < args.samples; i++) {
    const name = `sample${i}`
    current.push(reservation(name, `10.250.0.${i + 1}`))
    const r = resolver(200)
    const t0 = performance.now()
    const published = await publish()
    const { writeMs } = published
    await until(`${name} to be live`, async () =>
      args.deltas === true ? await deltaLive(r, published) : await isLive(r, name),
    )
    live.push(performance.now() - t0 - writeMs)
    writes.push(writeMs)
  }

  const burst = Array.from({ length: args.burst }, (_, i) =>
    reservation(`burst${i}`, `10.251.${i >> 8}.${(i & 255) + 1}`),
  )
  const appliesBefore = applies
  let monitor = new StallMonitor('node0.lab')
  current.push(...burst)
  const burstPublished = await publish()
  const burstLiveAt = await until('the whole burst to be live', async () =>
    args.deltas === true ? await deltaLive(probe, burstPublished) : await isLive(probe, `burst${args.burst - 1}`),
  )
  const addBurstStallMs = await monitor.stop(burstLiveAt)
  const addBurstApplies = applies - appliesBefore

  monitor = new StallMonitor('node0.lab')
  current.splice(current.length - burst.length, burst.length)
  const deleted = await publish()
  // A restart is over when publish returns. A SIGHUP is taken as soon as dnsmasq's loop wakes
  // up, well within this pause; the next answer then comes once the re-read is done.
  if (format !== 'conf') await new Promise((resolve) => setTimeout(resolve, 300))
  const answeredAt = await until('dnsmasq to answer again', async () => await answers(probe, 'node0.lab'))
  const deleteBatchStallMs = await monitor.stop(answeredAt)
  if (format !== 'conf')
    await until('the deleted names to go', async () => !(await answers(resolver(30_000), `burst${args.burst - 1}.lab`)))
  await dns.stop()
  return {
    format: args.deltas === true ? `${format}+deltas` : format,
    n,
    writeMs: round(median(writes)),
    liveMs: round(median(live)),
    liveMaxMs: round(Math.max(...live)),
    addBurstStallMs,
    deleteBatchStallMs,
    addBurstApplies,
    deleteApplied: deleted.applied,
    startMs,
  }
}

const result = await main(JSON.parse(process.argv[2] ?? '{}') as WorkerArgs)
process.stdout.write(`${JSON.stringify(result)}\n`)
// The resolvers' sockets would keep the process alive a little longer; the result is out.
process.exit(0)
