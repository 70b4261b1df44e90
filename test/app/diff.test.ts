// GET /reservations/diff: the dry run. It says what the next sync will do, in every format,
// and leaves the files, the state file, the ledger and dnsmasq alone.
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { auth, setup } from '../helpers/app.js'

async function snapshotDir(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name))
      else out[join(d, e.name)] = await readFile(join(d, e.name), 'utf8')
    }
  }
  await walk(dir)
  return out
}

// hostsfile twice: every change applied by SIGHUP, and additions as delta files (no apply; the
// name in a DNS delta file too, as the fleet is small).
const VARIANTS = {
  'conf': { env: { RESERVATIONS_FORMAT: 'conf' }, added: 'dhcp-host=web02,10.0.0.6', apply: 'checked-apply', dnsLine: false },
  'hostsfile': { env: { RESERVATIONS_FORMAT: 'hostsfile', HOSTSFILE_DELTAS: 'false' }, added: 'web02,10.0.0.6', apply: 'apply', dnsLine: true },
  'hostsfile+deltas': { env: { RESERVATIONS_FORMAT: 'hostsfile' }, added: 'web02,10.0.0.6', apply: 'none', dnsLine: true },
  'hostsdir': { env: { RESERVATIONS_FORMAT: 'hostsdir' }, added: 'web02,10.0.0.6', apply: 'none', dnsLine: true },
} as const

for (const [format, variant] of Object.entries(VARIANTS)) {
  t.test(`${format}: the diff names what the next sync does, and changes nothing`, async (t) => {
    const { app, fake, dir } = await setup(t, variant.env)
    fake.mine = { web01: ['10.0.0.5'] }
    await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })

    fake.mine = { web02: ['10.0.0.6'], zz01: ['10.0.0.6'], bad: ['192.168.1.1'] }
    const disk = await snapshotDir(dir)
    const calls = fake.calls.length
    const res = await app.inject({ method: 'GET', url: '/reservations/diff', headers: auth })
    t.equal(res.statusCode, 200)
    const diff = res.json()
    t.same(diff.added.map((r: { minionId: string, ip: string }) => [r.minionId, r.ip]), [['web02', '10.0.0.6']])
    t.same(diff.stale.map((r: { minionId: string }) => r.minionId), ['web01'], 'web01 left the mine: kept, stale')
    t.match(diff.conflicts, [{ minionId: 'zz01' }])
    t.match(diff.skipped, [{ minionId: 'bad' }])
    t.equal(diff.kept, 1)
    t.equal(diff.apply, variant.apply)
    const lines = diff.files.flatMap((f: { added: string[] }) => f.added)
    t.ok(lines.includes(variant.added), `the ${format} line for web02 would be added: ${JSON.stringify(lines)}`)
    t.equal(lines.some((l: string) => /^10\.0\.0\.6 web02\b/.test(l)), variant.dnsLine, `its DNS line ${variant.dnsLine ? 'too' : 'not (yet)'}`)
    t.same(diff.files.flatMap((f: { removed: string[] }) => f.removed), [], 'nothing removed')

    t.same(await snapshotDir(dir), disk, 'no file written, the state file included')
    t.notOk(app.saltmasq.ledger.has('web02'), 'the ledger is untouched')
    const made = fake.calls.slice(calls).map((c) => JSON.stringify(c.body))
    t.notOk(made.some((b) => b.includes('"local"')), 'dnsmasq was not touched')

    const sync = (await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })).json()
    t.same(sync.added.map((r: { minionId: string }) => r.minionId), ['web02'], 'the sync did what the diff said')
    const after = await snapshotDir(dir)
    t.ok(Object.values(after).some((text) => text.split('\n').includes(variant.added)), 'and the line is on disk now')
    const again = (await app.inject({ method: 'GET', url: '/reservations/diff', headers: auth })).json()
    t.same([again.added, again.files, again.apply], [[], [], 'none'], 'nothing left to do')
  })
}

t.test('after a failed apply the files are written: the diff shows no lines but the owed apply', async (t) => {
  const { app, fake } = await setup(t, { RESERVATIONS_FORMAT: 'hostsfile', HOSTSFILE_DELTAS: 'false' })
  fake.mine = { web01: ['10.0.0.5'], web02: ['10.0.0.6'] }
  await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  // An apply that failed leaves the file changed and dnsmasq owed: the diff says so.
  fake.local.set('saltmasq.reload', { retcode: 1, stderr: 'no', stdout: '' })
  fake.mine = { web01: ['10.0.0.5'], web02: ['10.0.0.6'], web03: ['10.0.0.7'] }
  t.equal((await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })).statusCode, 502)
  const diff = (await app.inject({ method: 'GET', url: '/reservations/diff', headers: auth })).json()
  t.same(diff.files, [], 'the files are already written')
  t.equal(diff.apply, 'apply', 'but the apply is still owed')
})

t.test('the diff needs the token, and a salt-api failure is a coded 5xx, not a crash', async (t) => {
  const { app, fake } = await setup(t)
  t.equal((await app.inject({ method: 'GET', url: '/reservations/diff' })).statusCode, 401)
  fake.validTokens.clear()
  fake.mine = () => { throw new Error('mine down') }
  const res = await app.inject({ method: 'GET', url: '/reservations/diff', headers: auth })
  t.ok(res.statusCode >= 500 && res.statusCode < 600)
  t.match(res.json(), { code: /^SALTMASQ_SALT_/, message: /salt-api/ })
})
