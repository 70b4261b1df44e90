// `npm run bench [-- --quick] [-- --only=b1,b6] [-- --sizes=50000] [-- --formats=hostsfile+deltas]
// [-- --samples=15]`: runs the benchmarks, prints a table, writes bench/results/latest.json
// (latest-quick.json for --quick, only-b1-b6.json for a selection). Medians over the stated number
// of runs; ratios are taken between figures measured in this same run. Never part of the test suite.
import { cpus, totalmem } from 'node:os'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { repoRoot } from '../lab/paths.js'
import { benchAccept } from './b4-accept.js'
import { benchLatency, benchStreamLatency, type LatencyRow } from './b1-latency.js'
import { benchBurstSaltmasq, benchBurstSeed, benchBurstStream, benchSeedLatency } from './b2-burst.js'
import { benchScale } from './b3-scale.js'
import { B5_FORMATS, b5Name, benchFormats, type FormatRow } from './b5-formats.js'
import { benchSaltPublish, type SaltPublishRow } from './b5-salt.js'
import { benchBusRealMaster, benchBusStandIn, type BusRow } from './b6-bus.js'
import { benchDestroy } from './b8-destroy.js'
import { median, round, say } from './stats.js'

const quick = process.argv.includes('--quick')
/** The value of `--name=value` on the command line, if given. */
const option = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
// --only=b5 runs the format comparison alone (it needs no Salt) and writes its own results file.
const only = option('only')
const plan = quick
  ? {
      events: 3,
      seedEvents: 2,
      burst: 20,
      seedBurst: 0,
      seedCapS: 0,
      sizes: [1000, 10_000],
      scaleRuns: 1,
      acceptSeconds: 3,
      acceptRuns: 1,
      formatSamples: 3,
      busSeconds: 3,
    }
  : {
      events: 20,
      seedEvents: 10,
      burst: 200,
      seedBurst: 200,
      seedCapS: 300,
      sizes: [1000, 10_000, 50_000, 100_000],
      scaleRuns: 3,
      acceptSeconds: 10,
      acceptRuns: 3,
      formatSamples: 5,
      busSeconds: 20,
    }
// --samples=15: single additions per size in B5 (5, or 3 with --quick).
const samplesArg = option('samples')
if (samplesArg !== undefined) {
  if (!/^[1-9]\d*$/.test(samplesArg)) throw new Error('--samples takes a positive whole number')
  plan.formatSamples = Number(samplesArg)
}
// --formats=hostsfile+deltas,hostsdir: B5's rows to run (hostsdir, hostsfile, hostsfile+deltas, conf).
const formatsArg = option('formats')
const onlyFormats = formatsArg === undefined ? undefined : new Set(formatsArg.split(','))
for (const name of onlyFormats ?? [])
  if (!B5_FORMATS.some((f) => b5Name(f) === name))
    throw new Error(`--formats: '${name}' is not one of ${B5_FORMATS.map(b5Name).join(', ')}`)
// --sizes=50000,100000 narrows the fleet sizes B3 and B5 run at.
const sizes = option('sizes')?.split(',').map(Number)
if (sizes !== undefined) {
  if (sizes.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error('--sizes takes a comma-separated list of positive whole numbers, e.g. --sizes=50000,100000')
  plan.sizes = sizes
}
const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, `
  + `Node ${process.version}`
const started = new Date()
say(
  `saltmasq benchmarks${quick ? ' (quick)' : ''}${only === undefined ? '' : ` (${only} only)`} — `
  + `${started.toISOString()} — ${machine}`,
)

async function formats(): Promise<FormatRow[]> {
  say(
    `\nB5 formats: real dnsmasq (DHCP + DNS) holding N reservations; ${plan.formatSamples} single additions, a `
    + `burst of 200 additions, a batch of 200 deletions`,
  )
  say(
    '  minions  format            write  live after write (max) | longest stall: additions  deletions | applies '
    + 'in burst | dnsmasq start',
  )
  return await benchFormats(
    plan.sizes,
    plan.formatSamples,
    200,
    (r) => {
      say(
        `  ${String(r.n).padStart(7)}  ${r.format.padEnd(16)} ${String(r.writeMs).padStart(6)} `
        + `${String(r.liveMs).padStart(9)} (${r.liveMaxMs}) ms | ${String(r.addBurstStallMs).padStart(20)} `
        + `${String(r.deleteBatchStallMs).padStart(10)} ms | ${String(r.addBurstApplies).padStart(16)} | `
        + `${String(r.startMs).padStart(10)} ms`,
      )
    },
    onlyFormats,
  )
}

async function bus(): Promise<BusRow[]> {
  say(`\nB6 the whole bus on the event stream: ~2 KB job returns with cloud events mixed in, ${plan.busSeconds} s`)
  const rows = [
    await benchBusStandIn(plan.busSeconds, 20_000, 2048),
    await benchBusRealMaster(plan.busSeconds, 2048),
    await benchBusRealMaster(plan.busSeconds, 2048, ['pub_server_write_queue_size: 100000']),
  ]
  for (const r of rows) {
    say(
      `  ${r.source.padEnd(32)} ${String(r.eventsPerSecond).padStart(6)} events/s; seen ${r.eventsSeen} of `
      + `${r.eventsSent}; cloud events taken ${r.cloudTaken} of ${r.cloudSent}, their machines reserved `
      + `${r.cloudReserved} (busy-bus resyncs ${r.busyResyncs}); saltmasq CPU ${r.cpuCores} cores; RSS `
      + `${r.rssStartMb} → max ${r.rssMaxMb} → ${r.rssEndMb} MB`,
    )
  }
  return rows
}

// --only=b1,b6 runs those alone (and writes bench/results/only-b1-b6[-quick].json).
const wanted = new Set(only?.split(',') ?? ['b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b8'])
const results: Record<string, unknown> = { date: started.toISOString(), machine, quick }

if (wanted.has('b1')) {
  say('\nB1 event → applied latency (real master, salt-api, minions, dnsmasq)')
  const latency: LatencyRow[] = await benchLatency(plan.events)
  latency.push(...(await benchStreamLatency(plan.events)))
  const seedSamples = await benchSeedLatency(plan.seedEvents)
  latency.push({
    path: 'seed: event on the master bus → dnsmasq restarted',
    runs: seedSamples.length,
    medianMs: round(median(seedSamples)),
    minMs: round(Math.min(...seedSamples)),
    maxMs: round(Math.max(...seedSamples)),
  })
  // The one row counted in bytes, not milliseconds.
  const unit = (r: LatencyRow): string => (r.path.trimStart().startsWith('bytes') ? 'bytes' : 'ms')
  for (const r of latency)
    say(
      `  ${r.path.padEnd(70)} median ${String(r.medianMs).padStart(7)} ${unit(r)}  (min ${r.minMs}, max `
      + `${r.maxMs}; ${r.runs} runs)`,
    )
  const medianOf = (prefix: string): number => latency.find((r) => r.path.startsWith(prefix))!.medianMs
  const floor = medianOf('floor: bare')
  const streamFloor = medianOf('floor, same lab, between')
  const eventFloor = medianOf('floor, same lab, started by an event')
  const fromHook = medianOf('saltmasq: webhook received')
  const fromEvent = medianOf('saltmasq: event on the master bus')
  const streamReloaded = medianOf('saltmasq: event on the bus → dnsmasq reloaded (stream')
  const streamLive = medianOf('saltmasq: event on the bus → answering')
  const viaSalt = medianOf('saltmasq: event on the bus → dnsmasq reloaded (stream, hostsfile, DNSMASQ_PUBLISH=salt)')
  const seed = medianOf('seed')
  const ratios = {
    webhookToFloor: round(fromHook / floor, 2),
    reactorEventToSeed: round(fromEvent / seed, 2),
    streamEventToFloor: round(streamReloaded / streamFloor, 2),
    streamEventToEventFloor: round(streamReloaded / eventFloor, 2),
    streamLiveToSeed: round(streamLive / seed, 2),
    saltPublishToLocal: round(viaSalt / streamReloaded, 2),
  }
  say(
    `  webhook → reloaded / floor: ${ratios.webhookToFloor}×;  event → reloaded, reactor / seed: `
    + `${ratios.reactorEventToSeed}×`,
  )
  say(
    `  event → reloaded, stream / floor in the same lab: ${ratios.streamEventToFloor}× (goal ≤ 1.1×), / the same `
    + `floor started by an event on the stream: ${ratios.streamEventToEventFloor}×;  event → answering, stream `
    + `+ hostsdir / seed: ${ratios.streamLiveToSeed}× (goal ≤ 0.15×)`,
  )
  say(
    `  event → reloaded, DNSMASQ_PUBLISH=salt / local (stream, hostsfile): ${ratios.saltPublishToLocal}× (goal ≤ 1.2×)`,
  )
  Object.assign(results, { latency, latencyRatios: ratios })
}

if (wanted.has('b2')) {
  say(`\nB2 burst of created events fired within a second on the real master bus`)
  // --quick leaves out the seed's burst: a lab of its own and seconds per restart.
  const burst = [
    await benchBurstSaltmasq(plan.burst),
    ...(await benchBurstStream(plan.burst)),
    ...(plan.seedBurst > 0 ? [await benchBurstSeed(plan.seedBurst, plan.seedCapS)] : []),
  ]
  for (const b of burst) {
    const received =
      b.eventsReceived === null ? '' : `received ${b.eventsReceived} (the last after ${b.receivedWithinS} s); `
    say(
      `  ${b.path.padEnd(27)} ${b.events} ${b.kind.padEnd(9)} fired in ${b.fireSeconds} s; ${received}mine reads `
      + `${b.mineReads}; applies ${b.applies}; ${b.kind === 'created' ? 'reserved' : 'released'} ${b.done}; `
      + `wall ${b.wallSeconds ?? '>cap'} s, ${b.afterLastEventS ?? '–'} s after the last event (${b.note})`,
    )
  }
  results.burst = burst
}

if (wanted.has('b3')) {
  say('\nB3 scale (loopback salt-api with a synthetic mine; saltmasq as its own process)')
  const scale = await benchScale(plan.sizes, plan.scaleRuns)
  say(
    '  minions   first sync: mine  ledger  render  write   total | steady: mine  compute  write | peak RSS: syncs '
    + ' listing | dnsmasq SIGHUP re-read  start',
  )
  for (const r of scale) {
    say(
      `  ${String(r.minions).padStart(7)}   `
      + `${[r.firstSyncMs.mine, r.firstSyncMs.ledger, r.firstSyncMs.render, r.firstSyncMs.write, r.firstSyncMs.total].map((v) => String(v).padStart(7)).join('')} | ${[r.steadySyncMs.mine, r.steadySyncMs.compute, r.steadySyncMs.write].map((v) => String(v).padStart(7)).join('')} | ${String(r.peakRssMb).padStart(12)} MB ${String(r.listingPeakRssMb).padStart(5)} MB | ${String(r.dnsmasqReloadMs).padStart(9)} ms ${String(r.dnsmasqStartMs).padStart(8)} ms`,
    )
  }
  say(`  (ms, medians of ${plan.scaleRuns} run(s); steady = a sync with nothing new, median of ${plan.scaleRuns * 3})`)
  results.scale = scale
}

if (wanted.has('b4')) {
  say('\nB4 webhook accept throughput (autocannon, 50 connections)')
  const accept = await benchAccept(plan.acceptSeconds, plan.acceptRuns)
  for (const r of accept)
    say(
      `  ${r.target.padEnd(30)} ${String(r.requestsPerSec).padStart(7)} req/s  p50 ${r.latencyP50Ms} ms  p99 `
      + `${r.latencyP99Ms} ms  non-2xx ${r.non2xx}  (median of ${r.runs} × ${r.durationS} s)`,
    )
  const ratio = round(accept[0]!.requestsPerSec / accept[1]!.requestsPerSec, 2)
  say(`  saltmasq / bare Fastify: ${ratio}×`)
  Object.assign(results, { accept, acceptRatio: ratio })
}

async function saltPublishing(): Promise<SaltPublishRow[]> {
  const sizes = plan.sizes.filter((n) => n <= 50_000)
  say(
    `\nB5 DNSMASQ_PUBLISH=salt (hostsfile) against the real master, salt-api and dns-host: the full catch-up of a `
    + `minion holding nothing, then ${plan.formatSamples} single additions and one deletion as deltas; the `
    + `local publisher's addition in the same lab`,
  )
  say(
    '  minions | catch-up: bytes      ms | addition: bytes   ms | deletion: bytes   ms | local addition ms | salt '
    + '/ local',
  )
  return await benchSaltPublish(sizes, plan.formatSamples, (r) => {
    say(
      `  ${String(r.n).padStart(7)} | ${String(r.catchUpBytes).padStart(15)} ${String(r.catchUpMs).padStart(7)} | `
      + `${String(r.additionBytes).padStart(15)} ${String(r.additionMs).padStart(4)} | `
      + `${String(r.deletionBytes).padStart(15)} ${String(r.deletionMs).padStart(4)} | `
      + `${String(r.localAdditionMs).padStart(17)} | ${round(r.additionMs / r.localAdditionMs, 2)}×`,
    )
  })
}

// --only=b5s: the salt publishing part of B5 alone (B5 narrowed by --formats leaves it out).
if (wanted.has('b5')) results.formats = await formats()
if ((wanted.has('b5') && onlyFormats === undefined) || wanted.has('b5s'))
  results.saltPublishing = await saltPublishing()
if (wanted.has('b6')) results.bus = await bus()
if (wanted.has('b8')) {
  say(
    `\nB8 a genuine destroy on the real master, the key list confirming the event: → reservation released (sync `
    + `done), ${plan.events} machines each`,
  )
  const destroy = await benchDestroy(plan.events)
  for (const r of destroy)
    say(
      `  ${r.order.padEnd(70)} median ${String(r.medianMs).padStart(6)} ms  (min ${r.minMs}, max ${r.maxMs}; `
      + `${r.runs} runs)`,
    )
  results.destroy = destroy
}

await mkdir(join(repoRoot, 'bench', 'results'), { recursive: true })
// A quick or partial run never overwrites the figures of the last full run.
// A narrowed run is named for what it ran, so it never overwrites a full one.
const narrowed = [
  ...(formatsArg === undefined ? [] : [formatsArg.replaceAll('+', '')]),
  ...(sizes === undefined ? [] : [sizes.join('-')]),
  ...(samplesArg === undefined ? [] : [`x${samplesArg}`]),
]
const file = `${only === undefined ? 'latest' : `only-${[...wanted].join('-')}`}${narrowed.map((p) => `-${p.replaceAll(',', '-')}`).join('')}${quick ? '-quick' : ''}.json`
await writeFile(join(repoRoot, 'bench', 'results', file), `${JSON.stringify(results, null, 2)}\n`)
say(`\nwritten: bench/results/${file}`)
