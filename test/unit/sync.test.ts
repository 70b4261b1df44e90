// The sync side's timing rules: single flight, coalescing, chasing new minions' mine data,
// retrying after failures, the bounded backlog, the periodic reconcile, paced applies.
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileEnv } from '../helpers/file-env.js'
import t, { type Test } from 'tap'
import { pino } from 'pino'
import { loadConfig } from '../../src/config/index.js'
import { SaltApiStandIn } from '../../lab/salt-api-standin.js'
import { waitFor } from '../../lab/processes.js'
import { SaltClient } from '../../src/salt/client.js'
import { openSyncService } from '../../src/sync/service.js'
import { systemClock } from '../../src/util/clock.js'
import { FakeTimers } from '../helpers/fake-timers.js'

const logger = pino({ level: 'silent' })

/** Timers the test moves by hand, from a day in 2026. */
function fakeTimers(): FakeTimers {
  const timers = new FakeTimers()
  timers.now = Date.parse('2026-01-01T00:00:00Z')
  return timers
}

async function setup(
  t: Test, env: Record<string, string> = {}, latencyMs = 0, maxBacklog?: number, timers?: FakeTimers,
) {
  const dir = await mkdtemp(join(tmpdir(), 'smq-sync-'))
  const api = new SaltApiStandIn({ latencyMs })
  const config = loadConfig({
    ...api.env,
    SALT_API_PASSWORD: api.password,
    SALT_API_RETRIES: '0',
    WEBHOOK_TOKEN: 'x'.repeat(32),
    MANAGED_SUBNETS: '10.0.0.0/16',
    RECONCILE_INTERVAL_S: '0',
    ...fileEnv(dir),
    DNSMASQ_MINION: 'dns',
    DNSMASQ_TEST_FUNCTION: '',
    DNSMASQ_RELEASE_FUNCTION: '',
    ...env,
  })
  const client = new SaltClient({ ...config.salt, logger, dispatcher: api.mockAgent() })
  const open = async () =>
    await openSyncService({
      config,
      client,
      logger,
      clock: timers?.clock ?? systemClock,
      ...(timers === undefined ? {} : { timers }),
      ...(maxBacklog === undefined ? {} : { maxBacklog }),
    })
  const sync = await open()
  t.teardown(async () => {
    await sync.close()
    await rm(dir, { recursive: true, force: true })
  })
  return { ...sync, sync, api, count: (fun: string) => api.count(fun), dir, open }
}

t.test('a burst of 200 created events costs at most 2 mine reads and 2 applies, and reserves all 200', async (t) => {
  const { scheduler, ledger, api, count } = await setup(t, {}, 20)
  api.mine = Object.fromEntries(
    Array.from({ length: 200 }, (_, i) => [`vm${i}`, [`10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`]]),
  )
  const results = await Promise.all(Array.from({ length: 200 }, async (_, i) => await scheduler.created(`vm${i}`)))
  await scheduler.idle()
  t.ok(count('mine.get') <= 2, `mine reads: ${count('mine.get')}`)
  t.ok(count('saltmasq.reload') <= 2, `applies: ${count('saltmasq.reload')}`)
  t.equal(ledger.current.size, 200)
  t.equal(new Set(results).size <= 2, true, 'every caller got the result of one of the two runs')
  t.equal(scheduler.backlog, 0)
})

t.test('a resync while a sync runs joins the follow-up rather than running in parallel', async (t) => {
  const { scheduler, api, count } = await setup(t, {}, 30)
  api.mine = { a: ['10.0.0.1'] }
  const first = scheduler.sync()
  const second = scheduler.sync()
  const third = scheduler.sync()
  t.equal(await second, await third, 'the two later callers share one run')
  t.not(await first, await second)
  t.equal(count('mine.get'), 2)
})

t.test(
  'a created minion missing from the mine is chased with mine.update and reserved once its data arrives',
  async (t) => {
    const timers = fakeTimers()
    const { scheduler, ledger, api, count } = await setup(t, {}, 0, undefined, timers)
    api.mine = {}
    api.keys = new Set(['late01'])
    api.onMineUpdate = (chunk) => {
      t.equal(chunk.kwarg.tgt, 'late01')
      api.mine = { late01: ['10.0.7.7'] }
    }
    const first = await scheduler.created('late01')
    t.same(first?.added, [], 'not in the mine yet')
    t.equal(scheduler.backlog, 1)
    t.equal(scheduler.nextFollowUpAt, null, 'no mine read is set before mine.update has answered')
    await scheduler.idle()
    t.ok(scheduler.nextFollowUpAt !== null, 'a retry is set once mine.update answered')
    t.ok(scheduler.nextFollowUpAt! - timers.now <= 750, 'within the first backoff step')
    await timers.advance(1000)
    await scheduler.idle()
    t.ok(ledger.has('late01'), 'late01 reserved without another event')
    t.equal(count('mine.update'), 1, 'asked once')
    t.equal(scheduler.backlog, 0)
  },
)

t.test('a created minion that never shows up is given up after MINE_WAIT_MS, and no retry is left set', async (t) => {
  const timers = fakeTimers()
  const { scheduler, api, count } = await setup(t, { MINE_WAIT_MS: '400' }, 0, undefined, timers)
  api.mine = {}
  api.keys = new Set(['ghost'])
  await scheduler.created('ghost')
  for (let i = 0; i < 10 && scheduler.backlog > 0; i++) {
    await scheduler.idle()
    await timers.advance(500)
  }
  await scheduler.idle()
  t.equal(scheduler.backlog, 0, 'ghost given up')
  t.ok(count('mine.get') >= 2, `retried the mine read (${count('mine.get')} reads)`)
  t.equal(scheduler.nextFollowUpAt, null, 'nothing more is scheduled: no more retries after the deadline')
})

t.test('a failed sync is retried on its own, and converges once salt-api answers again', async (t) => {
  const { scheduler, readiness, api } = await setup(t)
  api.mine = { a: ['10.0.0.1'] }
  api.local.set('saltmasq.reload', 'ERROR: cannot read dnsmasq\'s pid from /run/dnsmasq/dnsmasq.pid: dnsmasq is down')
  await t.rejects(scheduler.sync(), { code: 'SALTMASQ_APPLY_FAILED' })
  await readiness.refresh()
  t.match(readiness.report(), {
    ready: false,
    reason: /last sync failed: saltmasq\.reload on dns failed: ERROR: .*dnsmasq is down/,
  })
  t.ok(scheduler.nextFollowUpAt !== null, 'a retry is set')
  api.local.set('saltmasq.reload', true)
  await waitFor('a retry to succeed', () => readiness.report().ready, 15_000, 50)
  t.equal(scheduler.lastResult?.applied, true, 'the owed apply was made by the retry')
})

t.test('the backlog is bounded: past it, a created hint is dropped for one full sync, never refused', async (t) => {
  const { scheduler, api, count } = await setup(t, {}, 50, 3)
  api.mine = {}
  const runs = [scheduler.created('a'), scheduler.created('b'), scheduler.created('c')]
  const reads = count('mine.get')
  const past = scheduler.created('d')
  t.ok(past !== null, 'the fourth is not refused')
  t.equal(scheduler.counts.dropped, 1, 'but dropped and counted')
  await past
  t.ok(count('mine.get') > reads, 'a full sync ran in its place')
  t.equal(scheduler.destroyed('e'), null, 'a destroyed event for an unreserved minion costs nothing')
  await Promise.allSettled(runs)
})

t.test('the periodic reconcile syncs without any event', async (t) => {
  const timers = fakeTimers()
  const { scheduler, ledger, api, count } = await setup(t, {}, 0, undefined, timers)
  api.mine = { a: ['10.0.0.1'] }
  scheduler.startReconcile(100_000)
  for (let i = 0; i < 2; i++) {
    await timers.advance(100_000)
    await scheduler.idle()
  }
  t.equal(count('mine.get'), 2, 'two reconcile runs, one per interval')
  t.equal(ledger.current.size, 1)
})

t.test('a created event for a minion already reserved costs no sync at all', async (t) => {
  const { scheduler, api, count } = await setup(t)
  api.mine = { a: ['10.0.0.1'] }
  await scheduler.sync()
  const reads = count('mine.get')
  t.equal(scheduler.created('a'), null)
  t.equal(count('mine.get'), reads)
})

t.test(
  'hostsdir: additions send dnsmasq nothing; deletions apply at once, then at most once per interval',
  async (t) => {
    const { scheduler, api, count, dir } = await setup(t, {
      RESERVATIONS_FORMAT: 'hostsdir',
      RELOAD_MIN_INTERVAL_S: '2',
    })
    api.mine = { a: ['10.0.0.1'], b: ['10.0.0.2'], c: ['10.0.0.3'] }
    const first = await scheduler.sync()
    t.equal(first.entriesWritten, 6, 'a DHCP and a DNS file for each')
    t.same(first.filesChanged, [join(dir, 'dhcp-hosts.d'), join(dir, 'hosts.d')])
    api.mine = { ...api.mine, d: ['10.0.0.4'] }
    await scheduler.created('d')
    t.same((await readdir(join(dir, 'dhcp-hosts.d'))).sort(), ['a', 'b', 'c', 'd'])
    t.equal(count('saltmasq.reload'), 0, 'no reload for additions')

    for (const id of ['a', 'b', 'c']) api.deleteKey(id)
    const removed = await scheduler.destroyed('a')
    t.equal(removed?.applied, true, 'the first deletion applies at once')
    t.equal(count('saltmasq.reload'), 1)
    const [batched, third] = await Promise.all([scheduler.destroyed('b'), scheduler.destroyed('c')])
    t.equal(batched, third, 'two destroys in one burst are one sync')
    t.equal(batched?.applied, false, 'deletions within the interval wait')
    t.ok(
      batched?.applyDueInMs != null && batched.applyDueInMs > 0 && batched.applyDueInMs <= 2000,
      `due in ${batched?.applyDueInMs} ms`,
    )
    t.ok(scheduler.nextFollowUpAt !== null, 'the sync that makes it is set')
    t.equal(count('saltmasq.reload'), 1, 'still one reload')
    await waitFor('the owed apply', () => count('saltmasq.reload') === 2, 5000, 20)
    await scheduler.idle()
    t.same(await readdir(join(dir, 'dhcp-hosts.d')), ['d'])
    t.same(await readdir(join(dir, 'hosts.d')), ['d'])
    const quiet = await scheduler.sync()
    t.equal(quiet.applyDueInMs, null, 'nothing deleted: no apply owed')
    t.equal(scheduler.nextFollowUpAt, null, 'and no sync set for one')
    t.equal(count('saltmasq.reload'), 2)
  },
)

t.test('hostsdir: with the state file lost, the ledger is rebuilt from the files saltmasq owns', async (t) => {
  const { scheduler, api, dir, sync, open } = await setup(t, { RESERVATIONS_FORMAT: 'hostsdir' })
  api.mine = { a: ['10.0.0.1', '10.0.0.7'], b: ['10.0.0.2'] }
  await scheduler.sync()
  await sync.close()
  await rm(join(dir, 'state.json'))
  await writeFile(join(dir, 'dhcp-hosts.d', 'printer'), 'printer,10.0.0.50\n')
  api.mine = { a: ['10.0.0.7'], b: ['10.0.0.2'] }
  const reopened = await open()
  t.teardown(async () => {
    await reopened.close()
  })
  t.same(
    [...reopened.ledger.current.values()].map((r) => [r.minionId, r.ip]),
    [
      ['a', '10.0.0.1'],
      ['b', '10.0.0.2'],
    ],
    'the foreign file is not taken for a reservation',
  )
  const result = await reopened.scheduler.sync()
  t.same(result.added, [])
  t.same(result.unownedFiles, [join(dir, 'dhcp-hosts.d', 'printer')])
  t.equal(result.entriesWritten, 0, 'nothing to rewrite')
})

t.test(
  'the state file is written when a reservation changes, never for a sync that only read the mine again; a version 1 file is rewritten once',
  async (t) => {
    const { scheduler, api, dir, sync, open } = await setup(t)
    const state = join(dir, 'state.json')
    api.mine = { a: ['10.0.0.1'], b: ['10.0.0.2'] }
    await scheduler.sync()
    const written = await stat(state)
    await scheduler.sync()
    await scheduler.sync()
    t.equal((await stat(state)).ino, written.ino, 'not replaced by two syncs that changed nothing')
    api.mine = { a: ['10.0.0.1'] }
    await scheduler.sync()
    const stale = await stat(state)
    t.not(stale.ino, written.ino, 'b turned stale: written')
    t.match(JSON.parse(await readFile(state, 'utf8')), {
      version: 2,
      reservations: [{ minionId: 'a' }, { minionId: 'b', staleSince: String }],
    })
    await sync.close()
    const v1 = {
      version: 1,
      reservations: [
        { minionId: 'a', ip: '10.0.0.1', firstSeen: '2026-01-01T00:00:00.000Z', lastSeen: '2026-01-02T00:00:00.000Z' },
      ],
    }
    await writeFile(state, JSON.stringify(v1))
    const reopened = await open()
    t.teardown(async () => {
      await reopened.close()
    })
    await reopened.scheduler.sync()
    t.match(
      JSON.parse(await readFile(state, 'utf8')),
      { version: 2, reservations: [{ minionId: 'a', ip: '10.0.0.1', firstSeen: '2026-01-01T00:00:00.000Z' }] },
      'the first sync after an upgrade writes version 2',
    )
    const upgraded = await stat(state)
    await reopened.scheduler.sync()
    t.equal((await stat(state)).ino, upgraded.ino, 'and then only on a change')
  },
)

for (const format of ['hostsdir', 'hostsfile', 'conf'] as const) {
  t.test(
    `${format}: an apply that failed is recorded on disk, made after a restart, and /ready is false until then`,
    async (t) => {
      const apply = format === 'conf' ? 'service.restart' : 'saltmasq.reload'
      // hostsfile: the SIGHUP path (with delta files an addition is applied by nothing at all).
      const { scheduler, api, count, dir, sync, open } = await setup(t, {
        RESERVATIONS_FORMAT: format,
        HOSTSFILE_DELTAS: 'false',
      })
      api.mine = { a: ['10.0.0.1'], b: ['10.0.0.2'] }
      await scheduler.sync()
      api.deleteKey('a')
      api.local.set(apply, 'ERROR: dnsmasq is not running')
      await t.rejects(scheduler.destroyed('a')!, { code: 'SALTMASQ_APPLY_FAILED' })
      t.ok((await readdir(dir)).includes('state.json.apply-owed'), 'the owed apply is on disk')
      await sync.close()

      api.local.delete(apply)
      const reopened = await open()
      t.teardown(async () => {
        await reopened.close()
      })
      await reopened.readiness.refresh()
      t.match(reopened.readiness.report(), {
        ready: false,
        reason: /dnsmasq has not taken in the reservations/,
        detail: { owedApply: { paced: false } },
      })
      const before = count(apply)
      const result = await reopened.scheduler.sync()
      t.same(result.filesChanged, [], 'nothing changed on disk')
      t.equal(result.applied, true, 'but the owed apply is made')
      t.equal(count(apply), before + 1)
      t.notOk((await readdir(dir)).includes('state.json.apply-owed'), 'and its record removed')
      t.equal(reopened.readiness.report().ready, true)
      t.equal((await reopened.scheduler.sync()).applied, false, 'once')
    },
  )
}

t.test('hostsdir: a reload owed by a saltmasq that kept the marker in the directory is still made', async (t) => {
  const { scheduler, api, count, dir, sync, open } = await setup(t, { RESERVATIONS_FORMAT: 'hostsdir' })
  api.mine = { b: ['10.0.0.2'] }
  await scheduler.sync()
  await sync.close()
  await writeFile(join(dir, 'dhcp-hosts.d', '.saltmasq-reload-owed'), '2026-11-01T00:00:00.000Z\n')
  const reopened = await open()
  t.teardown(async () => {
    await reopened.close()
  })
  const result = await reopened.scheduler.sync()
  t.equal(result.applied, true)
  t.equal(count('saltmasq.reload'), 1)
  t.same(await readdir(join(dir, 'dhcp-hosts.d')), ['b'], 'the old marker is gone')
})

t.test('a burst of destroyed events spread over a second is one sync and one apply', async (t) => {
  // Every apply at once (no pacing): the count is the burst's folding, not RELOAD_MIN_INTERVAL_S.
  const timers = fakeTimers()
  const { scheduler, ledger, api, count } = await setup(t, { RELOAD_MIN_INTERVAL_S: '0' }, 0, undefined, timers)
  // One machine stays: with every key gone the key list would be empty, and held for a minute.
  api.mine = {
    ...Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`vm${i}`, [`10.0.1.${i + 1}`]])),
    stays: ['10.0.2.1'],
  }
  await scheduler.sync()
  const applies = count('saltmasq.reload')
  const runs: Array<Promise<unknown>> = []
  for (let i = 0; i < 50; i++) {
    api.deleteKey(`vm${i}`)
    runs.push(scheduler.destroyed(`vm${i}`)!)
    await timers.advance(20)
  }
  const results = await timers.until(Promise.all(runs))
  await scheduler.idle()
  t.equal(ledger.current.size, 1, 'all 50 released')
  t.equal(count('saltmasq.reload') - applies, 1, 'one apply for the burst')
  t.equal(new Set(results).size, 1, 'every caller got the one sync\'s result')
})

t.test(
  'a destroyed event releases only once the key list confirms it, with no mine read; a key that stays keeps the reservation',
  async (t) => {
    const timers = fakeTimers()
    const { scheduler, ledger, api, count } = await setup(t, { DESTROY_CONFIRM_S: '2' }, 0, undefined, timers)
    api.mine = { a: ['10.0.0.1'], b: ['10.0.0.2'], c: ['10.0.0.3'] }
    await scheduler.sync()
    const reads = count('mine.get')
    const started = timers.now
    const kept = scheduler.destroyed('b')
    // salt-cloud's order: the event, then the key deleted ~100 ms later.
    const released = scheduler.destroyed('a')
    await timers.advance(100)
    api.deleteKey('a')
    await timers.advance(1000)
    const result = await released
    t.match(result?.removed, [{ minionId: 'a', reason: 'destroyed' }])
    t.equal(count('mine.get'), reads, 'releasing read no mine')
    t.ok(ledger.has('b'), 'b, whose key stays, is kept meanwhile')
    let settled = false
    void kept!.finally(() => { settled = true })
    for (let i = 0; i < 20 && !settled; i++) await timers.advance(500)
    t.ok(timers.now - started >= 2000, 'not before DESTROY_CONFIRM_S')
    t.equal(await kept, null, 'and its event is dropped as not confirmed after DESTROY_CONFIRM_S')
    t.ok(ledger.has('b'))
    t.equal(scheduler.unconfirmedDestroys, 1)
    t.equal(scheduler.destroyed('zz'), null, 'an event for a minion with no reservation costs nothing')
  },
)
