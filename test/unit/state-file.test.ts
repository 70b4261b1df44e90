import t from 'tap'
import { listReservations } from '../../src/ledger/ledger.js'
import { parseLedger, serializeLedger } from '../../src/store/ledger-file.js'

const v1 = JSON.stringify({
  version: 1,
  reservations: [
    { minionId: 'web01', ip: '10.0.0.5', firstSeen: '2026-01-01T00:00:00.000Z', lastSeen: '2026-01-03T00:00:00.000Z' },
    { minionId: 'db01', ip: '10.0.0.6', firstSeen: '2026-01-01T00:00:00.000Z', lastSeen: '2026-01-02T00:00:00.000Z', staleSince: '2026-01-02T01:00:00.000Z' },
  ],
})

t.test('a version 1 file is read: the latest lastSeen of a reservation the mine had is when the mine was read', async (t) => {
  const { ledger, version } = parseLedger('/state.json', v1)
  t.equal(version, 1)
  t.equal(ledger.seenAt, '2026-01-03T00:00:00.000Z')
  t.same([...ledger.keys()], ['db01', 'web01'], 'put in minion-id order')
  t.equal(ledger.get('web01')?.lastSeen, undefined, 'seen by the last read: no lastSeen of its own')
  t.equal(ledger.get('db01')?.lastSeen, '2026-01-02T00:00:00.000Z', 'a stale one keeps when the mine last had it')
  t.same(listReservations(ledger).map((r) => r.lastSeen), ['2026-01-02T00:00:00.000Z', '2026-01-03T00:00:00.000Z'], 'the API shows what version 1 said')
})

t.test('version 2 round-trips, with seenAt once', async (t) => {
  const { ledger } = parseLedger('/state.json', v1)
  const text = serializeLedger(ledger)
  t.match(JSON.parse(text), { version: 2, seenAt: '2026-01-03T00:00:00.000Z' })
  t.notMatch(text, /"lastSeen": "2026-01-03/, 'no per-reservation copy of the read time')
  const again = parseLedger('/state.json', text)
  t.equal(again.version, 2)
  t.same(listReservations(again.ledger), listReservations(ledger))
})

t.test('a damaged file is refused with the path and what is wrong', async (t) => {
  t.throws(() => parseLedger('/s.json', '{"version": 3, "reservations": []}'), { code: 'SALTMASQ_STATE_CORRUPT', message: /\/s\.json.*"version": 2/ })
  t.throws(() => parseLedger('/s.json', '{"version": 2, "seenAt": 5, "reservations": []}'), { code: 'SALTMASQ_STATE_CORRUPT', message: /seenAt/ })
  t.throws(() => parseLedger('/s.json', '{"version": 2, "seenAt": null, "reservations": [{"minionId": "a", "ip": "10.0.0.1"}]}'), { code: 'SALTMASQ_STATE_CORRUPT', message: /firstSeen/ })
  t.throws(() => parseLedger('/s.json', '{"version": 1, "reservations": [{"minionId": "a", "ip": "10.0.0.1", "firstSeen": "x"}]}'), { code: 'SALTMASQ_STATE_CORRUPT', message: /lastSeen/ }, 'version 1 had lastSeen on every reservation')
  t.throws(() => parseLedger('/s.json', '{"version": 2, "seenAt": null, "reservations": [{"minionId": "a", "ip": "10.0.0.1", "firstSeen": "x", "lastSeen": 7}]}'), { code: 'SALTMASQ_STATE_CORRUPT', message: /lastSeen/ })
})

t.test('the records of dnsmasq minions and of an owed apply: versioned, and files from before versions are read', async (t) => {
  const { mkdtemp, writeFile, readFile, rm } = await import('node:fs/promises')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const { MinionRecords } = await import('../../src/store/minion-records.js')
  const { OwedApply } = await import('../../src/store/owed-apply.js')
  const dir = await mkdtemp(join(tmpdir(), 'smq-store-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const record = { files: { '/x': 'abc' }, applyOwed: false, behindSince: null, reason: null, confirmedAt: 5 }
  await writeFile(join(dir, 'old.minions'), JSON.stringify({ 'dns-a': record, 'dns-b': { files: 7 } }))
  const old = await MinionRecords.open(join(dir, 'old.minions'))
  t.same(old.get('dns-a'), record, 'a bare map from before versions is read')
  t.equal(old.get('dns-b'), undefined, 'a record that does not match its schema is dropped (whole files once)')
  old.set('dns-c', record)
  await old.save()
  t.match(JSON.parse(await readFile(join(dir, 'old.minions'), 'utf8')), { version: 1, minions: { 'dns-a': record, 'dns-c': record } })
  t.same((await MinionRecords.open(join(dir, 'old.minions'))).get('dns-c'), record, 'version 1 round-trips')

  await writeFile(join(dir, 'owed'), JSON.stringify({ need: 'apply', since: 42 }))
  t.same((await OwedApply.open(join(dir, 'owed'), 1000)).owed, { need: 'apply', since: 42 }, 'an owed apply from before versions')
  await writeFile(join(dir, 'owed'), '{"need": "reboot"}')
  t.same((await OwedApply.open(join(dir, 'owed'), 1000)).owed, { need: 'checked-apply', since: 1000 }, 'anything unreadable owes the careful apply')
  const owed = await OwedApply.open(join(dir, 'none'), 1000)
  await owed.record('apply', 7)
  t.same(JSON.parse(await readFile(join(dir, 'none'), 'utf8')), { version: 1, need: 'apply', since: 7 })
})
