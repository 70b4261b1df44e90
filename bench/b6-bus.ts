// B6: the bus as it is in a big fleet. salt-api's event stream carries every event on the
// master's bus, job returns included (a state.apply on 10,000 minions is tens of thousands of
// them): saltmasq must read them all, act on none of them, miss none of the cloud events mixed
// in, and keep its memory flat.
// - stand-in: a salt-api stand-in writes ~2 KB job returns at RATE events/s (paced, and slowed by
//   TCP backpressure if saltmasq reads slower) to saltmasq running as its own process, whose CPU
//   time and memory are read from /proc.
// - real master: one process fires job returns on a real master's bus as fast as it can;
//   saltmasq (in this process) reads them through the real salt-api.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { Lab } from '../lab/lab.js'
import { removeOnExit, sleep, waitFor } from '../lab/processes.js'
import { SaltApiStandIn, sseEvent } from '../lab/salt-api-standin.js'
import { SaltmasqProcess } from '../lab/saltmasq-process.js'
import { cpuSeconds, round, rssMb } from './stats.js'

export interface BusRow {
  source: string
  seconds: number
  /** Events put on the stream (stand-in) or fired on the bus (real master). */
  eventsSent: number
  eventsSeen: number
  eventsPerSecond: number
  cloudSent: number
  /** Cloud events saltmasq got from the stream. */
  cloudTaken: number
  /** The machines of those events reserved at the end (by their event, or a resync after a busy bus). */
  cloudReserved: number
  busyResyncs: number
  /** saltmasq's CPU seconds per second of wall time while the flood lasted. */
  cpuCores: number
  rssStartMb: number
  rssMaxMb: number
  rssEndMb: number
}

const TOKEN = 'bench-webhook-token-0123456789abcdefghij'
const BATCH = 1000

/** A batch of BATCH job returns of about `bytes` each, as rest_cherrypy streams them. */
function jobReturns(bytes: number, offset: number): string {
  const blob = 'x'.repeat(Math.max(0, bytes - 360))
  let out = ''
  for (let i = 0; i < BATCH; i++) {
    const jid = `2026${String(offset + i).padStart(16, '0')}`
    const minion = `node${String((offset + i) % 10_000).padStart(5, '0')}`
    out += sseEvent(`salt/job/${jid}/ret/${minion}`, {
      cmd: '_return', id: minion, jid, fun: 'state.apply', fun_args: [], retcode: 0, success: true, _stamp: '2026-11-25T12:00:00.000000',
      return: { 'file_|-motd_|-/etc/motd_|-managed': { comment: blob, result: true, changes: {} } },
    })
  }
  return out
}

export async function benchBusStandIn(seconds: number, rate: number, bytes: number): Promise<BusRow> {
  const dir = await mkdtemp(join(tmpdir(), 'smq-b6-'))
  const forget = removeOnExit(dir)
  const cloud: string[] = []
  const api = await SaltApiStandIn.listening(() => Object.fromEntries(cloud.map((id, i) => [id, [`10.80.${Math.floor(i / 250)}.${(i % 250) + 1}`]])))
  let svc: SaltmasqProcess | undefined
  try {
    svc = await SaltmasqProcess.start({
      ...api.env, WEBHOOK_TOKEN: TOKEN, MANAGED_SUBNETS: '10.80.0.0/16', DNSMASQ_MINION: 'dns', DNSMASQ_RELEASE_FUNCTION: '',
      DHCP_HOSTSFILE: join(dir, 'dhcp-hosts'), DHCP_HOSTSDIR: join(dir, 'dhcp-hosts.d'), DNS_HOSTSDIR: join(dir, 'hosts.d'), ADDN_HOSTS_FILE: join(dir, 'addn-hosts'), STATE_FILE: join(dir, 'state.json'),
      RECONCILE_INTERVAL_S: '0', LOG_LEVEL: 'warn',
    }, join(dir, 'saltmasq.log'))
    await waitFor('the stream open', () => api.streams === 1, 30_000, 20)
    const state = async () => (await svc!.request('GET', '/reservations')).body as { reservations: Array<{ minionId: string }>, eventStream: { eventsSeen: number, eventsUsed: number, busyResyncs: number } }
    const batches = [0, 1, 2, 3].map((k) => jobReturns(bytes, k * BATCH))
    const pid = svc.pid
    const rssStart = await rssMb(pid)
    let rssMax = rssStart
    const cpuStart = await cpuSeconds(pid)
    const started = performance.now()
    let sent = 0
    let batchNo = 0
    const sampler = setInterval(() => { void rssMb(pid).then((mb) => { rssMax = Math.max(rssMax, mb) }) }, 250)
    while (performance.now() - started < seconds * 1000) {
      const due = rate * (performance.now() - started) / 1000
      if (sent >= due) {
        await sleep(1)
        continue
      }
      // One cloud event per batch, for a machine the mine has from now on.
      const id = `cloud${String(batchNo).padStart(4, '0')}`
      cloud.push(id)
      await api.emitRaw(batches[batchNo % batches.length]! + sseEvent(`salt/cloud/${id}/created`, { name: id, event: 'created instance' }))
      sent += BATCH + 1
      batchNo++
    }
    const took = (performance.now() - started) / 1000
    const cpu = (await cpuSeconds(pid)) - cpuStart
    clearInterval(sampler)
    await waitFor('saltmasq to have read everything', async () => (await state()).eventStream.eventsSeen >= sent, 120_000, 100)
    await waitFor('the last reservations', async () => (await state()).reservations.length >= cloud.length, 30_000, 100).catch(() => undefined)
    const final = await state()
    return {
      source: `stand-in, ${rate}/s paced`,
      seconds: round(took, 1),
      eventsSent: sent,
      eventsSeen: final.eventStream.eventsSeen,
      eventsPerSecond: Math.round(sent / took),
      cloudSent: cloud.length,
      cloudTaken: final.eventStream.eventsUsed,
      cloudReserved: final.reservations.filter((r) => r.minionId.startsWith('cloud')).length,
      busyResyncs: final.eventStream.busyResyncs,
      cpuCores: round(cpu / took, 2),
      rssStartMb: rssStart,
      rssMaxMb: rssMax,
      rssEndMb: await rssMb(pid),
    }
  } finally {
    await svc?.stop()
    await api.close()
    await rm(dir, { recursive: true, force: true })
    forget()
  }
}

export async function benchBusRealMaster(seconds: number, bytes: number, masterConfig: string[] = []): Promise<BusRow> {
  const lab = await Lab.start({ minions: [], reactor: false, masterConfig })
  try {
    const cloudCount = 40
    const app = await lab.startSaltmasq(lab.saltmasqEnv('hostsfile', { MANAGED_SUBNETS: '10.80.0.0/16', RECONCILE_INTERVAL_S: '0', LOG_LEVEL: 'error' }), pino({ level: 'error' }))
    const stream = app.saltmasq.stream!
    await waitFor('the stream connected', () => stream.state.connected && app.saltmasq.scheduler.lastResult !== null, 60_000, 20)
    await app.saltmasq.scheduler.idle()
    // Registered once the connect-time sync is done: only their events (or a resync) reserve them.
    await lab.salt.load.registerFakeMinions(cloudCount, '10.80.1', 'flood')
    const seenBefore = stream.state.eventsSeen
    const usedBefore = stream.state.eventsUsed
    const rssStart = round(process.memoryUsage().rss / 2 ** 20)
    let rssMax = rssStart
    const sampler = setInterval(() => { rssMax = Math.max(rssMax, round(process.memoryUsage().rss / 2 ** 20)) }, 250)
    const cpuStart = process.cpuUsage()
    const flood = await lab.salt.load.floodBus(seconds, bytes, Math.max(1, Math.floor(seconds * 2000 / cloudCount)), 'flood', cloudCount)
    // Whatever is still on its way through salt-api.
    await waitFor('the stream to go quiet', async () => {
      const seen = stream.state.eventsSeen
      await sleep(1000)
      return stream.state.eventsSeen === seen
    }, 120_000, 0)
    const cpu = process.cpuUsage(cpuStart)
    clearInterval(sampler)
    // The resync that follows a busy bus (the stream's own: at most a few seconds after it calms).
    const fired = Array.from({ length: flood.cloud }, (_, i) => `flood${String(i).padStart(3, '0')}`)
    const reservedOfFired = () => fired.filter((id) => app.saltmasq.ledger.has(id)).length
    await waitFor('the machines of the cloud events reserved', () => reservedOfFired() >= flood.cloud, 30_000, 100).catch(() => undefined)
    await app.saltmasq.scheduler.idle()
    const seen = stream.state.eventsSeen - seenBefore
    return {
      source: `real master, one firing process${masterConfig.length === 0 ? '' : ` (${masterConfig.join(', ')})`}`,
      seconds: round(flood.seconds, 1),
      eventsSent: flood.fired,
      eventsSeen: seen,
      eventsPerSecond: Math.round(flood.fired / flood.seconds),
      cloudSent: flood.cloud,
      cloudTaken: stream.state.eventsUsed - usedBefore,
      cloudReserved: reservedOfFired(),
      busyResyncs: stream.state.busyResyncs,
      // In-process: this process is saltmasq (the flood and Salt run in others).
      cpuCores: round((cpu.user + cpu.system) / 1e6 / flood.seconds, 2),
      rssStartMb: rssStart,
      rssMaxMb: rssMax,
      rssEndMb: round(process.memoryUsage().rss / 2 ** 20),
    }
  } finally {
    await lab.stop()
  }
}
