// One sync, start to end, and nothing about when it runs: read the mine through salt-api, update
// the ledger (pure), save it, publish it to dnsmasq, release the leases of destroyed machines.
// Returns what it did; the scheduler decides what happens next.
import type { Logger } from 'pino'
import type { Config } from '../config/index.js'
import type { Publisher } from '../dnsmasq/publisher.js'
import type { Ledger, MineAddress, MineSnapshot } from '../ledger/ledger.js'
import { MAX_CANDIDATES, updateLedger, type LedgerUpdate } from '../ledger/update.js'
import type { SaltClient } from '../salt/client.js'
import { parseMine } from '../salt/mine.js'
import type { Clock } from '../util/clock.js'
import { laps } from '../util/elapsed.js'
import type { DurableLedger } from './durable-ledger.js'
import type { KeyListRead, KeyWatch } from './key-watch.js'
import type { SyncResult } from './result.js'

export interface PassDeps {
  config: Pick<Config, 'mine' | 'subnets' | 'keyGoneAfterMs'>
  client: Pick<SaltClient, 'mineGet'>
  keys: KeyWatch
  ledger: DurableLedger
  publisher: Publisher
  clock: Clock
  logger: Logger
}

export interface PassOutcome {
  result: SyncResult
  /** Whether the mine had this minion in this pass (the scheduler chases created ones it did not have). */
  inMine: (minionId: string) => boolean
}

/** What the events since the last pass ask of this one. */
export interface PassRequest {
  /** Minions whose destroy the key list confirmed, or an operator deleted: their reservations go. */
  destroyed: ReadonlySet<string>
  /** Minions whose key was deleted or rejected, and when: their key-gone clock starts then. */
  keyGoneHints: ReadonlyMap<string, Date>
  /**
   * false: only releases (confirmed destroys), so the mine is not read: every reservation is
   * taken as the mine had it at the last read, and no newcomer is looked for. Default true.
   */
  readMine?: boolean
}

/** The mine as the last read left it, for a pass that does not read it: what was not stale is present. */
function asLastRead(ledger: Ledger): MineSnapshot {
  const present = { addresses: [] }
  const snapshot = new Map<string, { addresses: MineAddress[] }>()
  for (const r of ledger.values()) if (r.staleSince === undefined) snapshot.set(r.minionId, present)
  return snapshot
}

/** The ledger's rules applied to what a sync read (the mine, a key list) and what events asked. */
export function applyRules(
  deps: Pick<PassDeps, 'config' | 'ledger'>,
  mine: MineSnapshot,
  keyList: KeyListRead,
  request: PassRequest,
  now: number,
): LedgerUpdate {
  const { config } = deps
  return updateLedger(deps.ledger.current, {
    mine,
    mineRead: request.readMine !== false,
    destroyed: request.destroyed,
    keys: keyList.accepted,
    ...(keyList.readAt === null ? {} : { keysReadAt: new Date(keyList.readAt) }),
    keyGoneAfterMs: config.keyGoneAfterMs,
    keyGoneHints: request.keyGoneHints,
    subnets: config.subnets,
    byMac: config.mine.byMac,
    now: new Date(now),
  })
}

export async function runPass(deps: PassDeps, request: PassRequest): Promise<PassOutcome> {
  const { config, logger: log } = deps
  const started = deps.clock()
  const lap = laps()
  // A key deleted or rejected on the bus: read the key list now, so its clock starts with this
  // sync. A clock run out: only a list read after it ran out may release the reservation.
  if (request.keyGoneHints.size > 0 || deps.keys.needsFresherList(deps.ledger.current, config.keyGoneAfterMs, started))
    await deps.keys.refresh()
  const keyList = deps.keys.latest
  const { snapshot, problems } =
    request.readMine === false
      ? { snapshot: asLastRead(deps.ledger.current), problems: [] }
      : parseMine(await deps.client.mineGet(config.mine.target, config.mine.fun), deps.ledger.current)
  for (const p of problems) log.warn(p, 'mine data ignored')
  const mineMs = lap()

  const update = applyRules(deps, snapshot, keyList, request, started)
  for (const r of update.removed)
    if (r.reason === 'key-gone')
      log.warn(
        { minionId: r.minionId, ip: r.ip, keyGoneSince: r.keyGoneSince },
        'released: the master has had no key for this minion for DESTROY_WHEN_KEY_GONE_S (key-gone)',
      )
  for (const s of update.skipped) log.warn(s, 'minion skipped')
  for (const c of update.conflicts) log.warn(c, 'reservation conflict: the older reservation wins')
  if (update.ignoredAddresses > 0)
    log.info(
      { ignoredAddresses: update.ignoredAddresses },
      `newcomers listed more than ${MAX_CANDIDATES} reservable addresses each: the rest were not considered`,
    )
  const ledgerMs = lap()

  // The ledger is made durable before dnsmasq sees anything that depends on it.
  await deps.ledger.save(update)
  const saveMs = lap()
  const { prepareMs, writeMs, applyMs, ...published } = await deps.publisher.publish([...update.ledger.values()])
  lap()
  const released = await deps.publisher.release(update.removed)
  const releaseMs = lap()

  const result: SyncResult = {
    startedAt: new Date(started).toISOString(),
    durationMs: deps.clock() - started,
    added: update.added,
    removed: update.removed,
    kept: update.kept,
    stale: update.stale.map((r) => ({ minionId: r.minionId, ip: r.ip, staleSince: r.staleSince! })),
    conflicts: update.conflicts,
    skipped: update.skipped,
    mineProblems: problems,
    keyListProblem: keyList.problem,
    keyGoneDueInMs: update.keyGoneDueInMs,
    ignoredAddresses: update.ignoredAddresses,
    ...published,
    ...released,
    stagesMs: {
      mine: mineMs,
      ledger: ledgerMs,
      render: prepareMs,
      write: saveMs + writeMs,
      apply: applyMs + releaseMs,
    },
  }
  return { result, inMine: (id) => snapshot.has(id) }
}
