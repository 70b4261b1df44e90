// Salt's state is the truth: the mine claims a newcomer may make, the key list's mass-release
// guard, and destroyed events that wait for the key list to confirm them.
import t from 'tap'
import { mineOnly } from '../helpers/ledger-input.js'
import { pino } from 'pino'
import { emptyLedger, type Ledger, type MineSnapshot } from '../../src/ledger/ledger.js'
import { MAX_CANDIDATES, updateLedger } from '../../src/ledger/update.js'
import { Subnets } from '../../src/ledger/validate.js'
import { DestroyClaims, recheckDelay } from '../../src/sync/destroy-claims.js'
import { KeyWatch, MASS_RELEASE_HOLD_MS, type KeyListRead } from '../../src/sync/key-watch.js'

const logger = pino({ level: 'silent' })
const now = new Date('2026-01-01T00:00:00Z')

function mine(entries: Record<string, string[]>): MineSnapshot {
  return new Map(Object.entries(entries).map(([id, list]) => [id, { addresses: list.map((ip) => ({ ip })) }]))
}

function reserve(subnets: Subnets, m: MineSnapshot, previous: Ledger = emptyLedger()) {
  return updateLedger(previous, mineOnly(m, subnets, now))
}

t.test('network, broadcast and excluded addresses are never reserved', async (t) => {
  const subnets = new Subnets(['10.0.0.0/24', '10.9.0.0/31', 'fd00::/64'], ['10.0.0.1', '10.0.0.240/28', 'fd00::53'])
  t.same(subnets.excluded, ['10.0.0.1/32', '10.0.0.240/28', 'fd00::53/128'])
  for (const ip of ['10.0.0.0', '10.0.0.255', '10.0.0.1', '10.0.0.241', 'fd00::', 'fd00::53', '10.1.0.5'])
    t.notOk(subnets.reservable(ip), ip)
  for (const ip of ['10.0.0.2', '10.0.0.239', '10.9.0.0', '10.9.0.1', 'fd00::1']) t.ok(subnets.reservable(ip), ip)
  t.ok(subnets.contains('10.0.0.1'), 'an excluded address is still inside the subnet')
  t.throws(() => new Subnets(['10.0.0.0/24'], ['gateway']), /nor an address/)

  // A minion squatting the gateway and the broadcast address, then a real one of its own.
  const u = reserve(subnets, mine({ evil: ['10.0.0.1', '10.0.0.255', '10.0.0.0'], honest: ['10.0.0.1', '10.0.0.7'] }))
  t.same(
    [...u.ledger.values()].map((r) => [r.minionId, r.ip]),
    [['honest', '10.0.0.7']],
  )
  t.match(u.skipped, [{ minionId: 'evil', reason: /no reservable address .*10\.0\.0\.1, 10\.0\.0\.255, 10\.0\.0\.0/ }])
})

t.test(
  'a newcomer listing hundreds of addresses: outside ones are ignored, inside ones bounded, the reason bounded',
  async (t) => {
    const subnets = new Subnets(['10.0.0.0/16'])
    const containers = Array.from({ length: 500 }, (_, i) => `172.16.${i >> 8}.${i & 255}`)
    const node = reserve(subnets, mine({ node01: [...containers, '10.0.5.5'] }))
    t.same(
      [...node.ledger.values()].map((r) => r.ip),
      ['10.0.5.5'],
      'a node with many container addresses still gets its reservation',
    )
    t.equal(node.ignoredAddresses, 0)

    const inside = Array.from({ length: 300 }, (_, i) => `10.0.${1 + (i >> 8)}.${(i & 255) + 1}`)
    const holders = Object.fromEntries(inside.slice(0, MAX_CANDIDATES).map((ip, i) => [`a${i}`, [ip]]))
    const taken = reserve(subnets, mine(holders))
    const greedy = reserve(subnets, mine({ ...holders, z: inside }), taken.ledger)
    t.equal(greedy.ignoredAddresses, 300 - MAX_CANDIDATES, 'past the bound, addresses are counted, not considered')
    t.match(
      greedy.conflicts,
      [{ minionId: 'z', reason: 'ip-taken' }],
      'its first 32 were all taken: it gets none of the rest',
    )

    const skipped = reserve(subnets, mine({ far: containers }))
    const reason = skipped.skipped[0]!.reason
    t.ok(reason.length < 250, `the skip reason is bounded (${reason.length} characters)`)
    t.match(reason, /and 492 more/)
  },
)

function ledgerOf(ids: string[]): Ledger {
  const subnets = new Subnets(['10.0.0.0/16'])
  return reserve(subnets, mine(Object.fromEntries(ids.map((id, i) => [id, [`10.0.${1 + (i >> 8)}.${(i & 255) + 1}`]]))))
    .ledger
}

t.test(
  'the key list: only accepted keys count, reads are shared, and a mass release is held until a later read agrees',
  async (t) => {
    const ids = Array.from({ length: 200 }, (_, i) => `vm${i}`)
    const ledger = ledgerOf(ids)
    let clock = 1_000_000
    let accepted = new Set(ids)
    let reads = 0
    let release: () => void = () => {}
    let gate: Promise<void> | null = null
    const watch = new KeyWatch({
      client: {
        keyListAll: async () => {
          reads++
          if (gate !== null) await gate
          return new Set(accepted)
        },
      },
      logger,
      clock: () => clock,
      ledger: () => ledger,
    })

    gate = new Promise((resolve) => {
      release = resolve
    })
    const first = watch.refresh()
    const joined = Array.from({ length: 1000 }, async () => await watch.refresh())
    release()
    gate = null
    await first
    await Promise.all(joined)
    t.equal(reads, 2, 'a thousand callers during a read share the one read after it')

    accepted = new Set(ids.slice(0, 190))
    const ten = await watch.refresh()
    t.equal(ten.accepted?.size, 190, '10 of 200 gone: below the guard, acted on')

    accepted = new Set(ids.slice(0, 100))
    clock += 1000
    const half = await watch.refresh()
    t.equal(half.accepted?.size, 190, 'half the fleet gone at once: held, the previous list stands')
    t.equal(watch.heldReads, 1)
    clock += 30_000
    t.equal((await watch.refresh()).accepted?.size, 190, 'still held half a minute later')
    clock += MASS_RELEASE_HOLD_MS
    t.equal((await watch.refresh()).accepted?.size, 100, 'a read a minute after the first agrees: acted on')

    accepted = new Set()
    clock += 1000
    t.equal((await watch.refresh()).accepted?.size, 100, 'an empty list is held too')
    accepted = new Set(ids)
    clock += 1000
    t.equal((await watch.refresh()).accepted?.size, 200, 'and a normal list ends the hold')
  },
)

t.test(
  'destroyed claims: released once a list read after the event lacks the key, dropped when never confirmed',
  async (t) => {
    let clock = 0
    let accepted = new Set(['a', 'b', 'c'])
    let reads = 0
    const released: string[][] = []
    const claims = new DestroyClaims<string>({
      readKeys: async (): Promise<KeyListRead> => {
        reads++
        const readAt = clock
        return { accepted: new Set(accepted), problem: null, readAt }
      },
      release: async (ids) => {
        released.push([...ids])
        return `sync${released.length}`
      },
      confirmMs: 3000,
      clock: () => clock,
      logger,
    })
    t.teardown(() => {
      claims.close()
    })
    const tick = async (ms: number) => {
      clock += ms
      await new Promise((resolve) => setTimeout(resolve, ms))
    }
    const a = claims.claim('a')
    const b = claims.claim('b')
    t.equal(claims.claim('a') !== a, true, 'a second event for the same minion joins the first claim')
    await tick(300)
    await claims.idle()
    t.equal(reads, 1, 'one read for both claims')
    t.same(released, [], 'both keys still accepted: nothing released')
    accepted = new Set(['b', 'c'])
    await tick(300)
    await claims.idle()
    t.same(released, [['a']])
    t.equal(await a, 'sync1', 'the claim resolves with the sync that released it')
    await tick(3000)
    await claims.idle()
    t.equal(await b, null, 'b was never confirmed within confirmMs: dropped')
    t.equal(claims.unconfirmed, 1)
    t.equal(claims.size, 0)
    t.equal(recheckDelay(0), 250)
    t.equal(recheckDelay(10_000), 1000)
    t.equal(recheckDelay(120_000), 15_000)
  },
)

t.test('a claim is never confirmed by a list read before it', async (t) => {
  let clock = 100
  const claims = new DestroyClaims<string>({
    // A list without the key, but read before the event: it cannot say the key went after.
    readKeys: async () => ({ accepted: new Set<string>(), problem: null, readAt: 50 }),
    release: async () => 'released',
    confirmMs: 600,
    clock: () => clock,
    logger,
  })
  const claim = claims.claim('a')
  clock = 800
  await new Promise((resolve) => setTimeout(resolve, 400))
  await claims.idle()
  claims.close()
  t.equal(await claim, null)
})
