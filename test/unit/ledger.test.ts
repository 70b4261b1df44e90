import fc from 'fast-check'
import t from 'tap'
import { mineOnly } from '../helpers/ledger-input.js'
import { emptyLedger, listReservations, type Ledger, type MineSnapshot } from '../../src/ledger/ledger.js'
import { updateLedger, type LedgerInput } from '../../src/ledger/update.js'
import { Subnets } from '../../src/ledger/validate.js'

const subnets = new Subnets(['10.0.0.0/16', 'fd00::/64'])
const t0 = new Date('2026-01-01T00:00:00Z')
const t1 = new Date('2026-01-01T01:00:00Z')

function mine(entries: Record<string, Array<string | { ip: string, mac?: string }>>): MineSnapshot {
  return new Map(
    Object.entries(entries).map(([id, list]) => [
      id,
      { addresses: list.map((a) => (typeof a === 'string' ? { ip: a } : a)) },
    ]),
  )
}

function step(ledger: Ledger, m: MineSnapshot, extra: Partial<LedgerInput> = {}) {
  return updateLedger(ledger, mineOnly(m, subnets, t0, extra))
}

const ips = (l: Ledger) => Object.fromEntries([...l].map(([id, r]) => [id, r.ip]))

t.test('a new minion gets its address inside the managed subnets, not the first of its list', async (t) => {
  const u = step(emptyLedger(), mine({ web01: ['172.17.0.1', '192.168.1.4', '10.0.3.4'] }))
  t.same(ips(u.ledger), { web01: '10.0.3.4' })
  t.same(
    u.added.map((r) => r.minionId),
    ['web01'],
  )
  t.equal(u.added[0]?.firstSeen, t0.toISOString())
})

t.test('a minion with no managed address is skipped with the addresses it had', async (t) => {
  const u = step(emptyLedger(), mine({ web01: ['172.17.0.1'], none: [] }))
  t.same(u.ledger.size, 0)
  t.match(u.skipped, [
    { minionId: 'none', reason: /mine has: none/ },
    { minionId: 'web01', reason: /172\.17\.0\.1/ },
  ])
})

t.test('an invalid minion id is skipped, never reserved', async (t) => {
  const u = step(emptyLedger(), mine({ 'bad,id': ['10.0.0.1'], 'good': ['10.0.0.2'] }))
  t.same(ips(u.ledger), { good: '10.0.0.2' })
  t.match(u.skipped, [{ minionId: 'bad,id', reason: /not a valid dnsmasq host name/ }])
})

t.test('sticky: the IP never changes while the mine says something else', async (t) => {
  const first = step(emptyLedger(), mine({ web01: ['10.0.0.5'] }))
  const second = updateLedger(first.ledger, {
    mine: mine({ web01: ['10.0.0.99'] }),
    destroyed: new Set(),
    subnets,
    byMac: false,
    keys: null,
    keyGoneAfterMs: 0,
    now: t1,
  })
  t.same(ips(second.ledger), { web01: '10.0.0.5' })
  t.same(second.kept, ['web01'])
  t.equal(listReservations(second.ledger)[0]?.lastSeen, t1.toISOString(), 'seen by the last sync')
  t.equal(second.ledger.get('web01')?.firstSeen, t0.toISOString())
  t.equal(second.ledger.get('web01'), first.ledger.get('web01'), 'the entry is kept as it was, not copied')
  t.equal(second.changed, false, 'nothing for the state file to record')
})

t.test('a minion missing from the mine keeps its reservation and is marked stale until it returns', async (t) => {
  const first = step(emptyLedger(), mine({ web01: ['10.0.0.5'] }))
  const gone = step(first.ledger, mine({}), { now: t1 })
  t.same(ips(gone.ledger), { web01: '10.0.0.5' })
  t.equal(gone.stale[0]?.staleSince, t1.toISOString())
  t.equal(gone.stale[0]?.lastSeen, t0.toISOString(), 'last seen by the sync before')
  t.equal(gone.changed, true)
  const stillGone = step(gone.ledger, mine({}), { now: new Date('2026-01-02T00:00:00Z') })
  t.equal(stillGone.stale[0]?.staleSince, t1.toISOString(), 'stale since the first miss')
  t.equal(
    listReservations(stillGone.ledger)[0]?.lastSeen,
    t0.toISOString(),
    'a stale one keeps when the mine last had it',
  )
  t.equal(stillGone.changed, false)
  const back = step(stillGone.ledger, mine({ web01: ['10.0.0.5'] }), { now: new Date('2026-01-03T00:00:00Z') })
  t.equal(back.ledger.get('web01')?.staleSince, undefined)
  t.same(listReservations(back.ledger)[0]?.lastSeen, '2026-01-03T00:00:00.000Z')
  t.equal(back.changed, true)
  t.same(back.stale, [])
})

t.test('destroyed removes the reservation and the IP can be taken again later', async (t) => {
  const first = step(emptyLedger(), mine({ web01: ['10.0.0.5'] }))
  const destroyed = step(first.ledger, mine({ web01: ['10.0.0.5'] }), { destroyed: new Set(['web01']) })
  t.same(ips(destroyed.ledger), {}, 'not re-added in the same update even if the mine still lists it')
  t.same(
    destroyed.removed.map((r) => r.minionId),
    ['web01'],
  )
  const reused = step(destroyed.ledger, mine({ web02: ['10.0.0.5'] }))
  t.same(ips(reused.ledger), { web02: '10.0.0.5' })
})

t.test('conflicts: the older reservation wins, the newcomer is reported', async (t) => {
  const first = step(emptyLedger(), mine({ web01: ['10.0.0.5'] }))
  const u = step(first.ledger, mine({ 'web01': ['10.0.0.5'], 'web02': ['10.0.0.5'], 'WEB01.other': ['10.0.0.8'] }))
  t.same(ips(u.ledger), { web01: '10.0.0.5' })
  t.same(u.conflicts, [
    { minionId: 'WEB01.other', reason: 'name-taken', heldBy: 'web01' },
    { minionId: 'web02', reason: 'ip-taken', heldBy: 'web01', ip: '10.0.0.5' },
  ])
})

t.test('two newcomers in one snapshot claiming one IP: the first by id wins', async (t) => {
  const u = step(emptyLedger(), mine({ b: ['10.0.0.5'], a: ['10.0.0.5'] }))
  t.same(ips(u.ledger), { a: '10.0.0.5' })
  t.same(u.conflicts, [{ minionId: 'b', reason: 'ip-taken', heldBy: 'a', ip: '10.0.0.5' }])
})

t.test('a newcomer with a second managed address takes the free one', async (t) => {
  const first = step(emptyLedger(), mine({ a: ['10.0.0.5'] }))
  const u = step(first.ledger, mine({ a: ['10.0.0.5'], b: ['10.0.0.5', '10.0.0.6'] }))
  t.same(ips(u.ledger), { a: '10.0.0.5', b: '10.0.0.6' })
  t.same(u.conflicts, [])
})

t.test('by MAC: the MAC is kept, and one MAC is never reserved twice', async (t) => {
  const m = mine({
    a: [{ ip: '10.0.0.5', mac: 'aa:bb:cc:dd:ee:01' }],
    b: [{ ip: '10.0.0.6', mac: 'aa:bb:cc:dd:ee:01' }],
    c: ['10.0.0.7'],
  })
  const u = step(emptyLedger(), m, { byMac: true })
  t.same(u.ledger.get('a')?.mac, 'aa:bb:cc:dd:ee:01')
  t.same(u.ledger.get('c')?.mac, undefined, 'no MAC known: reserved by name')
  t.same(u.conflicts, [{ minionId: 'b', reason: 'mac-taken', heldBy: 'a', mac: 'aa:bb:cc:dd:ee:01' }])
  const noMac = step(emptyLedger(), m)
  t.equal(noMac.ledger.get('a')?.mac, undefined, 'MACs are ignored unless reserving by MAC')
})

// Property: whatever the sequence of mine snapshots and destroy events, no reservation changes
// its IP before its destroyed event, no two reservations share an IP, MAC or host name, and
// every reservation is a valid id with an address inside the managed subnets.
t.test('property: sticky, unique, valid under any sequence of snapshots and events', async (t) => {
  const id = fc.constantFrom('a', 'b', 'c', 'd', 'A', 'a.x', 'b.y', 'bad id', '-x', 'e')
  const ip = fc.oneof(
    fc.integer({ min: 0, max: 7 }).map((n) => `10.0.0.${n}`),
    fc.constantFrom('192.168.0.1', 'fd00::1', 'fd00::2', '10.1.0.0'),
  )
  const addr = fc
    .record({ ip, mac: fc.option(fc.constantFrom('aa:bb:cc:dd:ee:01', 'aa:bb:cc:dd:ee:02'), { nil: undefined }) })
    .map((a) => (a.mac === undefined ? { ip: a.ip } : { ip: a.ip, mac: a.mac }))
  const snapshot = fc
    .dictionary(id, fc.array(addr, { maxLength: 3 }))
    .map((d) => new Map(Object.entries(d).map(([k, v]) => [k, { addresses: v }])))
  const stepArb = fc.record({ snapshot, destroyed: fc.uniqueArray(id, { maxLength: 3 }) })

  fc.assert(
    fc.property(fc.array(stepArb, { maxLength: 12 }), fc.boolean(), (steps, byMac) => {
      let ledger: Ledger = emptyLedger()
      const held = new Map<string, string>()
      steps.forEach((s, i) => {
        const destroyed = new Set(s.destroyed)
        ledger = updateLedger(ledger, {
          mine: s.snapshot,
          destroyed,
          subnets,
          byMac,
          keys: null,
          keyGoneAfterMs: 0,
          now: new Date(t0.getTime() + i * 1000),
        }).ledger
        for (const gone of destroyed) held.delete(gone)
        const seenIps = new Set<string>()
        const seenMacs = new Set<string>()
        const seenNames = new Set<string>()
        for (const [minionId, r] of ledger) {
          if (held.has(minionId) && held.get(minionId) !== r.ip)
            throw new Error(`${minionId} moved from ${held.get(minionId)} to ${r.ip}`)
          held.set(minionId, r.ip)
          if (seenIps.has(r.ip)) throw new Error(`IP ${r.ip} held twice`)
          seenIps.add(r.ip)
          if (r.mac !== undefined) {
            if (seenMacs.has(r.mac)) throw new Error(`MAC ${r.mac} held twice`)
            seenMacs.add(r.mac)
          }
          const name = minionId.split('.')[0]!.toLowerCase()
          if (seenNames.has(name)) throw new Error(`name ${name} held twice`)
          seenNames.add(name)
          if (!subnets.contains(r.ip)) throw new Error(`${r.ip} outside the managed subnets`)
          if (!/^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$/i.test(minionId))
            throw new Error(`invalid id ${minionId}`)
        }
        for (const id of held.keys()) if (!ledger.has(id)) throw new Error(`${id} lost without a destroyed event`)
      })
    }),
    { numRuns: 2000 },
  )
  t.pass('2000 generated sequences held every rule')
})

const at = (minutes: number) => new Date(t0.getTime() + minutes * 60_000)
const keyed = (ids: string[]) => new Set(ids)
const GONE_AFTER = 15 * 60_000

t.test(
  'a reservation whose key is gone for DESTROY_WHEN_KEY_GONE_S is released as key-gone; one that only left the mine is kept',
  async (t) => {
    let l = step(emptyLedger(), mine({ web01: ['10.0.0.5'], db01: ['10.0.0.6'], app01: ['10.0.0.7'] }), {
      keys: keyed(['web01', 'db01', 'app01']),
      keyGoneAfterMs: GONE_AFTER,
    }).ledger
    // web01 destroyed while saltmasq missed its event: key and mine data gone. db01 left the mine only.
    let u = step(l, mine({ app01: ['10.0.0.7'] }), {
      keys: keyed(['db01', 'app01']),
      keyGoneAfterMs: GONE_AFTER,
      now: at(1),
    })
    t.same(u.removed, [])
    t.equal(
      u.ledger.get('web01')?.keyGoneSince,
      at(1).toISOString(),
      'the clock starts at the first sync that sees the key gone',
    )
    t.equal(u.keyGoneDueInMs, GONE_AFTER)
    l = u.ledger
    u = step(l, mine({ app01: ['10.0.0.7'] }), {
      keys: keyed(['db01', 'app01']),
      keyGoneAfterMs: GONE_AFTER,
      now: at(10),
    })
    t.same(u.removed, [])
    t.equal(u.keyGoneDueInMs, 6 * 60_000)
    u = step(u.ledger, mine({ app01: ['10.0.0.7'] }), {
      keys: keyed(['db01', 'app01']),
      keyGoneAfterMs: GONE_AFTER,
      now: at(16),
    })
    t.match(u.removed, [{ minionId: 'web01', ip: '10.0.0.5', reason: 'key-gone', keyGoneSince: at(1).toISOString() }])
    t.same([...u.ledger.keys()], ['app01', 'db01'], 'db01 (key still there) is kept, stale')
    t.ok(u.ledger.get('db01')?.staleSince)
    t.equal(u.keyGoneDueInMs, null)
  },
)

t.test('a key that comes back stops the clock; an unknown key list changes nothing; 0 turns it off', async (t) => {
  const first = step(emptyLedger(), mine({ web01: ['10.0.0.5'] }), {
    keys: keyed(['web01']),
    keyGoneAfterMs: GONE_AFTER,
  }).ledger
  const away = step(first, mine({}), { keys: keyed([]), keyGoneAfterMs: GONE_AFTER, now: at(1) }).ledger
  const back = step(away, mine({ web01: ['10.0.0.5'] }), {
    keys: keyed(['web01']),
    keyGoneAfterMs: GONE_AFTER,
    now: at(5),
  })
  t.equal(back.ledger.get('web01')?.keyGoneSince, undefined)
  const unknown = step(away, mine({}), { keys: null, keyGoneAfterMs: GONE_AFTER, now: at(60) })
  t.same(unknown.removed, [], 'no key list: nobody is released')
  t.equal(unknown.ledger.get('web01')?.keyGoneSince, at(1).toISOString(), 'and the clock is kept as it was')
  const off = step(away, mine({}), { keys: keyed([]), keyGoneAfterMs: 0, now: at(60) })
  t.same(off.removed, [])
})

t.test(
  'a key list read before the clock ran out cannot release: only a list read after it can (CI found a stale list releasing a live minion)',
  async (t) => {
    const l = step(emptyLedger(), mine({ web01: ['10.0.0.5'] }), {
      keys: keyed(['web01']),
      keyGoneAfterMs: GONE_AFTER,
    }).ledger
    // A list read at 0, before web01's key existed, used by a sync at 1: the clock starts at the read.
    const early = step(l, mine({ web01: ['10.0.0.5'] }), {
      keys: keyed([]),
      keysReadAt: at(0),
      keyGoneAfterMs: GONE_AFTER,
      now: at(1),
    })
    t.equal(early.ledger.get('web01')?.keyGoneSince, at(0).toISOString(), 'since the list that lacked it was read')
    // 30 minutes later, a sync still holding that old list (no fresher one read): kept.
    const stale = step(early.ledger, mine({ web01: ['10.0.0.5'] }), {
      keys: keyed([]),
      keysReadAt: at(0),
      keyGoneAfterMs: GONE_AFTER,
      now: at(30),
    })
    t.same(stale.removed, [], 'a list read before the clock ran out releases nothing')
    t.equal(stale.keyGoneDueInMs, 0, 'and the next sync should read a fresh list')
    // A fresh list shows the key: the clock stops. Had it lacked the key, the reservation would go.
    const fresh = step(stale.ledger, mine({ web01: ['10.0.0.5'] }), {
      keys: keyed(['web01']),
      keysReadAt: at(30),
      keyGoneAfterMs: GONE_AFTER,
      now: at(30),
    })
    t.same(fresh.removed, [])
    t.equal(fresh.ledger.get('web01')?.keyGoneSince, undefined)
    const gone = step(stale.ledger, mine({ web01: ['10.0.0.5'] }), {
      keys: keyed([]),
      keysReadAt: at(30),
      keyGoneAfterMs: GONE_AFTER,
      now: at(30),
    })
    t.match(gone.removed, [{ minionId: 'web01', reason: 'key-gone' }])
  },
)

t.test('a salt/key delete event starts the clock when it happened; a destroyed event still wins at once', async (t) => {
  const l = step(emptyLedger(), mine({ web01: ['10.0.0.5'], db01: ['10.0.0.6'] }), {
    keys: keyed(['web01', 'db01']),
    keyGoneAfterMs: GONE_AFTER,
  }).ledger
  const u = step(l, mine({}), {
    keys: keyed([]),
    keyGoneAfterMs: GONE_AFTER,
    keyGoneHints: new Map([['web01', at(-20)]]),
    destroyed: new Set(['db01']),
    now: at(0),
  })
  t.same(
    u.removed.map((r) => [r.minionId, r.reason]),
    [
      ['db01', 'destroyed'],
      ['web01', 'key-gone'],
    ],
  )
})

t.test(
  'property: without a destroyed event, a reservation goes only after its key was absent from every key list for DESTROY_WHEN_KEY_GONE_S',
  async (t) => {
    const ids = ['a', 'b', 'c', 'd']
    const stepArb = fc.record({
      minutes: fc.integer({ min: 0, max: 20 }),
      keys: fc.subarray(ids),
      inMine: fc.subarray(ids),
      keyListRead: fc.boolean(),
    })
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 15 }), (steps) => {
        const everyone = mine(Object.fromEntries(ids.map((id, i) => [id, [`10.0.0.${i + 1}`]])))
        let ledger = step(emptyLedger(), everyone, { keys: keyed(ids), keyGoneAfterMs: GONE_AFTER }).ledger
        let now = 0
        /** Since when each minion's key has been absent from every key list read (epoch ms). */
        const absentSince = new Map<string, number>()
        for (const s of steps) {
          now += s.minutes * 60_000
          const keys = s.keyListRead ? keyed(s.keys) : null
          const m = new Map([...everyone].filter(([id]) => s.inMine.includes(id)))
          const u = step(ledger, m, { keys, keyGoneAfterMs: GONE_AFTER, now: new Date(t0.getTime() + now) })
          if (keys !== null) {
            for (const id of ids) {
              if (keys.has(id)) absentSince.delete(id)
              else if (!absentSince.has(id)) absentSince.set(id, now)
            }
          }
          for (const r of u.removed) {
            if (r.reason !== 'key-gone') throw new Error(`${r.minionId} removed as ${r.reason}`)
            const since = absentSince.get(r.minionId)
            if (since === undefined || now - since < GONE_AFTER)
              throw new Error(
                `${r.minionId} released after ${since === undefined ? 'no' : now - since} ms without a key`,
              )
          }
          for (const id of ledger.keys()) {
            const since = absentSince.get(id)
            const due = keys !== null && since !== undefined && now - since >= GONE_AFTER
            if (due && u.ledger.has(id)) throw new Error(`${id} kept after ${now - since!} ms without a key`)
          }
          // A minion reserved afresh (back in the mine) starts a clock of its own at the next key list.
          for (const r of u.added) absentSince.delete(r.minionId)
          ledger = u.ledger
        }
      }),
      { numRuns: 2000 },
    )
    t.pass('2000 generated sequences of key lists and mine snapshots')
  },
)

t.test(
  'a sync that changes no reservation shares the previous map; one that does copies it, and the previous ledger is untouched',
  async (t) => {
    const first = step(emptyLedger(), mine({ a: ['10.0.0.1'], c: ['10.0.0.3'], e: ['10.0.0.5'] }))
    const steady = step(first.ledger, mine({ a: ['10.0.0.1'], c: ['10.0.0.3'], e: ['10.0.0.5'] }), { now: t1 })
    t.equal(steady.ledger.byId, first.ledger.byId, 'the same map')
    t.equal(steady.ledger.seenAt, t1.toISOString())
    t.equal(first.ledger.seenAt, t0.toISOString(), 'the previous ledger still says when it was read')
    const grown = step(
      steady.ledger,
      mine({ a: ['10.0.0.1'], b: ['10.0.0.2'], c: ['10.0.0.3'], d: ['10.0.0.4'], e: ['10.0.0.5'], f: ['10.0.0.6'] }),
    )
    t.same([...grown.ledger.keys()], ['a', 'b', 'c', 'd', 'e', 'f'], 'newcomers merged in minion-id order')
    t.same([...steady.ledger.keys()], ['a', 'c', 'e'], 'the previous ledger is not changed')
    const shrunk = step(grown.ledger, mine({ b: ['10.0.0.2'] }), { destroyed: new Set(['c']) })
    t.same([...shrunk.ledger.keys()], ['a', 'b', 'd', 'e', 'f'])
    t.same(
      shrunk.stale.map((r) => r.minionId),
      ['a', 'd', 'e', 'f'],
    )
    t.same([...grown.ledger.keys()], ['a', 'b', 'c', 'd', 'e', 'f'], 'copied on write')
    t.equal(grown.ledger.get('a')?.staleSince, undefined)
  },
)

t.test(
  'property: any sequence keeps minion-id order and one holder per address, a kept address never changes, stale is exactly missing from the mine, and changed says whether any entry changed',
  async (t) => {
    const ids = ['a', 'b', 'c', 'd', 'e', 'f']
    const stepArb = fc.record({
      inMine: fc.subarray(ids),
      destroyed: fc.subarray(ids),
      ip: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: ids.length, maxLength: ids.length }),
    })
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 12 }), (steps) => {
        let ledger = emptyLedger()
        let k = 0
        for (const s of steps) {
          const snapshot = mine(Object.fromEntries(s.inMine.map((id) => [id, [`10.0.0.${s.ip[ids.indexOf(id)]!}`]])))
          const u = step(ledger, snapshot, {
            destroyed: new Set(s.destroyed),
            now: new Date(t0.getTime() + ++k * 1000),
          })
          const keys = [...u.ledger.keys()]
          if (keys.join() !== [...keys].sort().join()) throw new Error(`out of order: ${keys.join()}`)
          if (new Set([...u.ledger.values()].map((r) => r.ip)).size !== u.ledger.size)
            throw new Error('an address held twice')
          for (const [id, r] of ledger)
            if (!s.destroyed.includes(id) && u.ledger.get(id)?.ip !== r.ip) throw new Error(`${id} changed its address`)
          for (const r of u.ledger.values())
            if ((r.staleSince === undefined) !== snapshot.has(r.minionId))
              throw new Error(`${r.minionId}: stale is not 'missing from the mine'`)
          if (
            u.changed
            !== (u.added.length > 0
              || u.removed.length > 0
              || [...u.ledger.values()].some((r) => ledger.get(r.minionId) !== r))
          )
            throw new Error('changed does not say whether an entry changed')
          ledger = u.ledger
        }
      }),
      { numRuns: 1000 },
    )
    t.pass('1000 generated sequences of mine snapshots and destroyed events')
  },
)
