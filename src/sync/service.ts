// The sync side of saltmasq wired together: publisher, durable ledger, scheduler (running the
// pass) and readiness. The app builds it once; the tests and benchmarks build the same thing.
import { systemTimers, type Timers } from '../util/timers.js'
import type { Logger } from 'pino'
import type { Config } from '../config/index.js'
import { openPublisher } from '../dnsmasq/open-publisher.js'
import type { Publisher } from '../dnsmasq/publisher.js'
import type { SaltClient } from '../salt/client.js'
import type { Clock } from '../util/clock.js'
import { dryRun, type Diff } from './diff.js'
import { DurableLedger } from './durable-ledger.js'
import { KeyWatch } from './key-watch.js'
import { runPass } from './pass.js'
import { ReadinessMonitor } from './readiness.js'
import { SyncScheduler } from './scheduler.js'

/** How often salt-api is probed in the background for /ready. */
export const READINESS_PROBE_MS = 10_000

export interface SyncService {
  scheduler: SyncScheduler
  keys: KeyWatch
  ledger: DurableLedger
  publisher: Publisher
  readiness: ReadinessMonitor
  /** What a sync would change now; changes nothing. */
  dryRun: () => Promise<Diff>
  /** Starts the reconcile and the readiness probes. */
  start: () => void
  /** Stops the timers and waits for the sync in flight. */
  close: () => Promise<void>
}

export interface SyncServiceOptions {
  config: Config
  client: Pick<SaltClient, 'mineGet' | 'mineUpdate' | 'keyListAll' | 'local' | 'probe'>
  logger: Logger
  clock: Clock
  maxBacklog?: number
  /** Tests pass timers they move by hand, with the clock. */
  timers?: Timers
}

export async function openSyncService({
  config,
  client,
  logger,
  clock,
  maxBacklog,
  timers = systemTimers,
}: SyncServiceOptions): Promise<SyncService> {
  const publisher = await openPublisher({ config, client, logger, clock })
  const ledger = await DurableLedger.open(config.files.state, publisher, clock, logger)
  publisher.remember([...ledger.current.values()])
  const keys = new KeyWatch({ client, logger, clock, timers, ledger: () => ledger.current })
  const scheduler = new SyncScheduler({
    pass: async (request) => await runPass({ config, client, keys, ledger, publisher, clock, logger }, request),
    isReserved: (id) => ledger.has(id),
    mineUpdate: async (ids) => await client.mineUpdate(ids),
    readKeys: async () => await keys.refresh(),
    mineWaitMs: config.mine.waitMs,
    destroyConfirmMs: config.destroyConfirmMs,
    clock,
    logger,
    timers,
    ...(maxBacklog === undefined ? {} : { maxBacklog }),
  })
  let lastSuccessAt: number | null = null
  scheduler.onSync(() => {
    lastSuccessAt = clock()
    // The key list for the next sync, read after this one; a key newly gone gets a sync now.
    void keys.refresh().then(() => {
      if (keys.revealsNewAbsence(ledger.current)) scheduler.sync().catch(() => undefined)
    })
  })
  const readiness = new ReadinessMonitor({
    probe: async () => {
      await client.probe()
    },
    lastError: () => scheduler.lastError,
    lastSuccessAt: () => lastSuccessAt,
    owedApply: () => publisher.owed,
    dnsmasqMinions: () => publisher.dnsmasqMinions,
    clock,
    intervalMs: READINESS_PROBE_MS,
  })
  return {
    scheduler,
    keys,
    ledger,
    publisher,
    readiness,
    dryRun: async () => await dryRun({ config, client, keys, ledger, publisher, clock }),
    start: () => {
      void keys.refresh()
      scheduler.startReconcile(config.reconcileIntervalMs)
      readiness.start()
    },
    close: async () => {
      readiness.stop()
      await scheduler.close()
    },
  }
}
