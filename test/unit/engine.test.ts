// The sync engine's timing rules: single flight, coalescing, chasing new minions' mine data,
// retrying after failures, the bounded backlog, the periodic reconcile.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { pino } from 'pino'
import { toConfig, type Env } from '../../src/config.js'
import { SaltClient } from '../../src/salt/client.js'
import { SyncEngine } from '../../src/sync/engine.js'
import { fakeSaltApi, SALT_URL } from '../harness/fake-salt-api.js'
import { waitFor } from '../harness/processes.js'

const logger = pino({ level: 'silent' })

async function setup (t: Test, env: Partial<Record<keyof Env, unknown>> = {}, latencyMs = 0, maxBacklog?: number) {
  const dir = await mkdtemp(join(tmpdir(), 'smq-engine-'))
  const fake = fakeSaltApi({ latencyMs })
  const config = toConfig({
    HOST: '127.0.0.1', PORT: 0, LOG_LEVEL: 'silent', SALT_API_URL: SALT_URL, SALT_API_USER: 'u', SALT_API_PASSWORD: 'salt-secret',
    SALT_API_EAUTH: 'pam', SALT_API_TIMEOUT_MS: 5000, SALT_API_RETRIES: 0, SALT_API_INSECURE: false,
    WEBHOOK_TOKEN: 'x'.repeat(32), HOOK_RATE_LIMIT: 1000, RESYNC_RATE_LIMIT: 1000,
    MINE_TARGET: '*', MINE_FUNCTION: 'network.ip_addrs', MANAGED_SUBNETS: '10.0.0.0/16', MINE_WAIT_MS: 60_000, RECONCILE_INTERVAL_S: 0,
    RESERVATIONS_FORMAT: 'hostsfile', RESERVATIONS_FILE: join(dir, 'r.conf'), DHCP_HOSTSFILE: join(dir, 'dhcp-hosts'), ADDN_HOSTS_FILE: join(dir, 'addn-hosts'),
    DHCP_HOSTSDIR: join(dir, 'dhcp-hosts.d'), DNS_HOSTSDIR: join(dir, 'hosts.d'), RELOAD_MIN_INTERVAL_S: 30,
    STATE_FILE: join(dir, 'state.json'), DNSMASQ_MINION: 'dns', DNSMASQ_APPLY_ARGS: '["dnsmasq"]', DNSMASQ_TEST_FUNCTION: '', DNSMASQ_TEST_ARGS: '[]',
    DNSMASQ_RELEASE_FUNCTION: '', DNSMASQ_RELEASE_ARGS: '[]',
    ...env,
  } as Env)
  const client = new SaltClient({ ...config.salt, logger, dispatcher: fake.agent })
  const engine = await SyncEngine.open({ config, client, logger, ...(maxBacklog === undefined ? {} : { maxBacklog }) })
  t.teardown(async () => {
    await engine.close()
    await rm(dir, { recursive: true, force: true })
  })
  const count = (fun: string) => fake.calls.filter((c) => Array.isArray(c.body) && (c.body as Array<{ fun: string }>).some((x) => x.fun === fun)).length
  return { engine, fake, count, dir, config, client }
}

t.test('a burst of 200 created events costs at most 2 mine reads and 2 applies, and reserves all 200', async (t) => {
  const { engine, fake, count } = await setup(t, {}, 20)
  fake.mine = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`vm${i}`, [`10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`]]))
  const results = await Promise.all(Array.from({ length: 200 }, async (_, i) => await engine.created(`vm${i}`)))
  await engine.idle()
  t.ok(count('mine.get') <= 2, `mine reads: ${count('mine.get')}`)
  t.ok(count('service.reload') <= 2, `applies: ${count('service.reload')}`)
  t.equal(engine.reservations.length, 200)
  t.equal(new Set(results).size <= 2, true, 'every caller got the result of one of the two runs')
  t.equal(engine.backlog, 0)
})

t.test('a resync while a sync runs joins the follow-up rather than running in parallel', async (t) => {
  const { engine, fake, count } = await setup(t, {}, 30)
  fake.mine = { a: ['10.0.0.1'] }
  const first = engine.sync()
  const second = engine.sync()
  const third = engine.sync()
  t.equal(await second, await third, 'the two later callers share one run')
  t.not(await first, await second)
  t.equal(count('mine.get'), 2)
})

t.test('a created minion missing from the mine is chased with mine.update and reserved once its data arrives', async (t) => {
  const { engine, fake, count } = await setup(t)
  fake.mine = {}
  fake.onMineUpdate = (chunk) => {
    t.equal(chunk.kwarg.tgt, 'late01')
    setTimeout(() => { fake.mine = { late01: ['10.0.7.7'] } }, 100)
  }
  const first = await engine.created('late01')
  t.same(first?.added, [], 'not in the mine yet')
  t.equal(engine.backlog, 1)
  await waitFor('late01 reserved without another event', () => engine.reservations.some((r) => r.minionId === 'late01'), 15_000, 20)
  t.equal(count('mine.update'), 1, 'asked once')
  t.equal(engine.backlog, 0)
})

t.test('a created minion that never shows up is given up after MINE_WAIT_MS', async (t) => {
  const { engine, fake, count } = await setup(t, { MINE_WAIT_MS: 400 })
  fake.mine = {}
  await engine.created('ghost')
  await waitFor('ghost given up', () => engine.backlog === 0, 15_000, 20)
  const reads = count('mine.get')
  t.ok(reads >= 2, `retried the mine read (${reads} reads)`)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.equal(count('mine.get'), reads, 'no more retries after the deadline')
})

t.test('a failed sync is retried on its own, and converges once salt-api answers again', async (t) => {
  const { engine, fake } = await setup(t)
  fake.mine = { a: ['10.0.0.1'] }
  fake.local.set('service.reload', { result: false, comment: 'dnsmasq is down' })
  await t.rejects(engine.sync(), { code: 'SALTMASQ_APPLY_FAILED' })
  t.same((await engine.readiness()).ready, false)
  fake.local.set('service.reload', true)
  await waitFor('a retry to succeed', async () => (await engine.readiness()).ready, 15_000, 50)
  t.equal(engine.lastResult?.applied, true, 'the owed apply was made by the retry')
})

t.test('the backlog is bounded: past it, events are refused with 503, not dropped', async (t) => {
  const { engine, fake } = await setup(t, {}, 50, 3)
  fake.mine = {}
  const runs = [engine.created('a'), engine.created('b'), engine.destroyed('c')]
  t.throws(() => engine.created('d'), { code: 'SALTMASQ_QUEUE_FULL', statusCode: 503 })
  t.throws(() => engine.destroyed('e'), { code: 'SALTMASQ_QUEUE_FULL' })
  await Promise.allSettled(runs)
})

t.test('the periodic reconcile syncs without any event', async (t) => {
  const { engine, fake, count } = await setup(t)
  fake.mine = { a: ['10.0.0.1'] }
  engine.startReconcile(100)
  await waitFor('two reconcile runs', () => count('mine.get') >= 2, 5000, 20)
  t.equal(engine.reservations.length, 1)
})

t.test('a created event for a minion already reserved costs no sync at all', async (t) => {
  const { engine, fake, count } = await setup(t)
  fake.mine = { a: ['10.0.0.1'] }
  await engine.sync()
  const reads = count('mine.get')
  t.equal(engine.created('a'), null)
  t.equal(count('mine.get'), reads)
})

t.test('hostsdir: additions send dnsmasq nothing; deletions reload at once, then at most once per interval', async (t) => {
  const { engine, fake, count, dir } = await setup(t, { RESERVATIONS_FORMAT: 'hostsdir', RELOAD_MIN_INTERVAL_S: 1 })
  fake.mine = { a: ['10.0.0.1'], b: ['10.0.0.2'], c: ['10.0.0.3'] }
  const first = await engine.sync()
  t.equal(first.entriesWritten, 6, 'a DHCP and a DNS file for each')
  t.same(first.filesChanged, [join(dir, 'dhcp-hosts.d'), join(dir, 'hosts.d')])
  fake.mine = { ...fake.mine, d: ['10.0.0.4'] }
  await engine.created('d')
  t.same((await readdir(join(dir, 'dhcp-hosts.d'))).sort(), ['a', 'b', 'c', 'd'])
  t.equal(count('service.reload'), 0, 'no reload for additions')

  fake.mine = { d: ['10.0.0.4'] }
  const removed = await engine.destroyed('a')
  t.equal(removed.applied, true, 'the first deletion reloads at once')
  t.equal(count('service.reload'), 1)
  const batched = await engine.destroyed('b')
  t.equal(batched.applied, false, 'a second deletion within the interval waits')
  t.ok(batched.reloadDueInMs !== null && batched.reloadDueInMs > 0 && batched.reloadDueInMs <= 1000, `due in ${batched.reloadDueInMs} ms`)
  await engine.destroyed('c')
  t.equal(count('service.reload'), 1, 'still one reload')
  await waitFor('the owed reload', async () => count('service.reload') === 2, 3000, 20)
  t.same(await readdir(join(dir, 'dhcp-hosts.d')), ['d'])
  t.same(await readdir(join(dir, 'hosts.d')), ['d'])
  await engine.sync()
  await new Promise((resolve) => setTimeout(resolve, 1200))
  t.equal(count('service.reload'), 2, 'nothing deleted: no reload')
})

t.test('hostsdir: with the state file lost, the ledger is rebuilt from the files saltmasq owns', async (t) => {
  const { engine, fake, dir, config, client } = await setup(t, { RESERVATIONS_FORMAT: 'hostsdir' })
  fake.mine = { a: ['10.0.0.1', '10.0.0.7'], b: ['10.0.0.2'] }
  await engine.sync()
  await engine.close()
  await rm(join(dir, 'state.json'))
  await writeFile(join(dir, 'dhcp-hosts.d', 'printer'), 'printer,10.0.0.50\n')
  fake.mine = { a: ['10.0.0.7'], b: ['10.0.0.2'] }
  const reopened = await SyncEngine.open({ config, client, logger })
  t.teardown(async () => { await reopened.close() })
  t.same(reopened.reservations.map((r) => [r.minionId, r.ip]), [['a', '10.0.0.1'], ['b', '10.0.0.2']], 'the foreign file is not taken for a reservation')
  const result = await reopened.sync()
  t.same(result.added, [])
  t.same(result.unownedFiles, [join(dir, 'dhcp-hosts.d', 'printer')])
  t.equal(result.entriesWritten, 0, 'nothing to rewrite')
})

t.test('hostsdir: a reload owed when saltmasq stops is sent after it starts again', async (t) => {
  const { engine, fake, count, dir, config, client } = await setup(t, { RESERVATIONS_FORMAT: 'hostsdir' })
  fake.mine = { a: ['10.0.0.1'], b: ['10.0.0.2'] }
  await engine.sync()
  fake.mine = { b: ['10.0.0.2'] }
  fake.local.set('service.reload', { result: false, comment: 'dnsmasq is not running' })
  await t.rejects(engine.destroyed('a'), { code: 'SALTMASQ_APPLY_FAILED' })
  t.same(await readdir(join(dir, 'dhcp-hosts.d')), ['.saltmasq-reload-owed', 'b'], 'the file is gone, the owed reload is on disk')
  await engine.close()

  fake.local.delete('service.reload')
  const reopened = await SyncEngine.open({ config, client, logger })
  t.teardown(async () => { await reopened.close() })
  const before = count('service.reload')
  const result = await reopened.sync()
  t.equal(result.applied, true, 'nothing changed, but the owed reload is sent')
  t.equal(count('service.reload'), before + 1)
  t.same(await readdir(join(dir, 'dhcp-hosts.d')), ['b'], 'and its marker removed')
  t.equal((await reopened.sync()).applied, false, 'once')
})
