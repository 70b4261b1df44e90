// The scheduler's parts on injected timers: single flight, the operators' delete batch, the mine
// chase and the created gate. No test here waits on real time.
import t from 'tap'
import { pino } from 'pino'
import { CreatedGate } from '../../src/sync/created-gate.js'
import { DeleteBatch } from '../../src/sync/delete-batch.js'
import { DESTROY_QUIET_MAX_MS, DESTROY_QUIET_MS } from '../../src/sync/destroy-claims.js'
import { MineChase } from '../../src/sync/mine-chase.js'
import { SingleFlight } from '../../src/sync/single-flight.js'
import { FakeTimers, settle } from '../helpers/fake-timers.js'

const logger = pino({ level: 'silent' })

t.test('single flight: requests during a run share one follow-up', async (t) => {
  let runs = 0
  let release = (): void => {}
  const flight = new SingleFlight(async () => {
    runs++
    await new Promise<void>((resolve) => { release = resolve })
    return runs
  })
  const first = flight.request()
  const later = Array.from({ length: 100 }, async () => await flight.request())
  await settle()
  t.equal(runs, 1, 'one run in flight')
  release()
  await settle()
  t.equal(runs, 2, 'the hundred later requests started one follow-up')
  release()
  t.equal(await first, 1)
  t.same(new Set(await Promise.all(later)), new Set([2]), 'all of them resolve with the follow-up')
  t.equal(flight.pending, null)
})

t.test('single flight: a failed run rejects its callers, and the follow-up still runs', async (t) => {
  let n = 0
  const flight = new SingleFlight(async () => {
    n++
    if (n === 1) throw new Error('boom')
    return n
  })
  const first = flight.request()
  const second = flight.request()
  await t.rejects(first, /boom/)
  t.equal(await second, 2)
})

t.test('delete batch: each delete pushes the sync back by the quiet', async (t) => {
  const timers = new FakeTimers()
  let syncs = 0
  const batch = new DeleteBatch(async () => ++syncs, timers.clock, timers)
  const joined = [batch.join()]
  for (let i = 0; i < 5; i++) {
    await timers.advance(DESTROY_QUIET_MS - 1)
    joined.push(batch.join())
  }
  t.equal(syncs, 0, 'deletes keep coming within the quiet: no sync yet')
  await timers.advance(DESTROY_QUIET_MS)
  t.same(await Promise.all(joined), Array(6).fill(1), 'one sync for the whole batch, a quiet after the last delete')
  const late = batch.join()
  batch.flush()
  t.equal(await late, 2, 'flush starts a waiting batch at once')
})

t.test('delete batch: a steady stream of deletes is synced at the cap after the first', async (t) => {
  const timers = new FakeTimers()
  let ranAt = -1
  const batch = new DeleteBatch(async () => { ranAt = timers.now }, timers.clock, timers)
  const joined = [batch.join()]
  while (ranAt < 0 && timers.now < 10_000) {
    await timers.advance(DESTROY_QUIET_MS - 1)
    joined.push(batch.join())
  }
  t.equal(ranAt, DESTROY_QUIET_MAX_MS)
})

t.test('mine chase: asks once, reads again only after mine.update answered, gives up at the deadline', async (t) => {
  const timers = new FakeTimers()
  const reads: number[] = []
  const updates: string[][] = []
  let answer = (): void => {}
  const chase = new MineChase({
    mineUpdate: async (ids) => {
      updates.push([...ids])
      await new Promise<void>((resolve) => { answer = resolve })
    },
    readAgainIn: (ms) => { reads.push(ms) },
    mineWaitMs: 10_000,
    maxChased: 2,
    clock: timers.clock,
    logger,
  })
  t.ok(chase.add('a'))
  t.ok(chase.add('b'))
  t.notOk(chase.add('c'), 'past its bound a minion is not chased')
  chase.afterPass(() => false)
  await settle()
  t.same(updates, [['a', 'b']], 'one mine.update for both')
  t.same(reads, [], 'no read is asked for while the minions have not answered')
  t.ok(chase.busy)
  answer()
  await chase.idle()
  t.equal(reads.length, 1, 'a read once they answered')
  chase.afterPass((id) => id === 'a')
  t.equal(updates.length, 1, 'never asked twice')
  t.equal(chase.size, 1, 'a found, b still chased')
  timers.now += 10_000
  chase.afterPass(() => false)
  t.equal(chase.size, 0, 'b given up at its deadline')
})

t.test('mine chase: closing leaves a hanging mine.update behind and asks for nothing more', async (t) => {
  const reads: number[] = []
  const chase = new MineChase({
    mineUpdate: async () => await new Promise(() => undefined),
    readAgainIn: (ms) => { reads.push(ms) },
    mineWaitMs: 10_000,
    maxChased: 10,
    clock: () => 0,
    logger,
  })
  chase.add('slow')
  chase.afterPass(() => false)
  chase.close()
  chase.afterPass(() => false)
  t.same(reads, [])
})

t.test('created gate: one key read decides, only accepted ids are chased, past the bound a full sync', async (t) => {
  const chased = new Set<string>()
  let syncs = 0
  let answer: (ids: string[]) => void = () => {}
  // One read shared by every event waiting, as KeyWatch.refresh() does.
  const read = new Promise<{ accepted: Set<string>, problem: null, readAt: number }>((resolve) => {
    answer = (ids) => { resolve({ accepted: new Set(ids), problem: null, readAt: 0 }) }
  })
  const gate = new CreatedGate({
    readKeys: async () => await read,
    isReserved: (id) => id === 'old',
    chase: { has: (id) => chased.has(id), add: (id) => { chased.add(id); return true } },
    sync: async () => ++syncs,
    maxWaiting: 2,
    logger,
  })
  t.equal(gate.take('old'), null, 'already reserved: nothing spent')
  const a = gate.take('a')
  const forged = gate.take('forged')
  t.equal(gate.take('a'), a, 'a second event for the same id joins the first')
  const overflow = gate.take('x')
  t.equal(await overflow, 1, 'past the bound: a full sync instead')
  t.equal(gate.counts.dropped, 1)
  answer(['a'])
  t.equal(await a, 2)
  t.equal(await forged, null, 'no accepted key: nothing chased')
  t.same([...chased], ['a'])
  t.equal(gate.counts.createdWithoutKey, 1)
})
