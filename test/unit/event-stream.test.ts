// salt-api's event stream (GET /events) as an event source, against the stand-in on a loopback
// port: what is taken, what is ignored or refused, reconnects, re-logins and readiness. The real
// salt-api stream is exercised by test/integration/event-stream.test.ts.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { pino } from 'pino'
import { buildApp } from '../../src/app.js'
import { waitFor } from '../../lab/processes.js'
import { SaltApiStandIn } from '../../lab/salt-api-standin.js'

const TOKEN = 'unit-test-webhook-token-0123456789abcdef'
const auth = { authorization: `Bearer ${TOKEN}` }

async function setup(
  t: Test,
  env: Record<string, string> = {},
  standin: ConstructorParameters<typeof SaltApiStandIn>[0] = {},
) {
  const dir = await mkdtemp(join(tmpdir(), 'smq-stream-'))
  const api = new SaltApiStandIn(standin)
  api.mine = { web01: ['10.0.0.5'] }
  await api.listen()
  let offsetMs = 0
  const app = await buildApp({
    env: {
      ...api.env,
      WEBHOOK_TOKEN: TOKEN,
      MANAGED_SUBNETS: '10.0.0.0/16',
      DNSMASQ_MINION: 'dns',
      LOG_LEVEL: 'silent',
      DHCP_HOSTSFILE: join(dir, 'dhcp-hosts'),
      DHCP_HOSTSDIR: join(dir, 'dhcp-hosts.d'),
      DNS_HOSTSDIR: join(dir, 'hosts.d'),
      ADDN_HOSTS_FILE: join(dir, 'addn-hosts'),
      STATE_FILE: join(dir, 'state.json'),
      RECONCILE_INTERVAL_S: '0',
      DNSMASQ_RELEASE_FUNCTION: '',
      ...env,
    },
    logger: pino({ level: 'silent' }),
    clock: () => Date.now() + offsetMs,
  })
  t.teardown(async () => {
    await app.close()
    await api.close()
    await rm(dir, { recursive: true, force: true })
  })
  const { scheduler, ledger } = app.saltmasq
  const stream = app.saltmasq.stream!
  /** Waits for the sync every (re)connect runs, then for nothing more to be running. */
  const settled = async () => {
    await waitFor('the stream to be connected', () => stream.state.connected, 10_000, 10)
    await waitFor('a sync after the connect', () => scheduler.lastResult !== null, 10_000, 10)
    await scheduler.idle()
  }
  return {
    app,
    api,
    scheduler,
    ledger,
    stream,
    settled,
    advance: (ms: number) => {
      offsetMs += ms
    },
  }
}

t.test('every connect runs a full sync; a created event on the stream reserves the machine', async (t) => {
  const { api, ledger, scheduler, stream, settled } = await setup(t)
  await settled()
  t.ok(ledger.has('web01'), 'the connect-time sync reserved what the mine had')
  api.mine = { web01: ['10.0.0.5'], db01: ['10.0.0.6'] }
  const reads = api.count('mine.get')
  api.emit('salt/cloud/db01/created', { name: 'db01', profile: 'p', event: 'created instance' })
  await waitFor('db01 reserved through the stream', () => ledger.has('db01'), 10_000, 10)
  await scheduler.idle()
  t.equal(api.count('mine.get'), reads + 1, 'one mine read for the event')
  t.match(stream.state, { connected: true, reconnects: 0, eventsUsed: 1 })
})

t.test('the rest of the bus costs nothing: job returns are not acted on, whatever their data holds', async (t) => {
  const { api, stream, scheduler, settled } = await setup(t)
  await settled()
  const reads = api.count('mine.get')
  for (let i = 0; i < 200; i++) {
    api.emit(`salt/job/2026112523${i}/ret/web01`, {
      fun: 'state.apply',
      return: { 'salt/cloud/db01/destroyed': 'mentioned in a state' },
      id: 'web01',
    })
  }
  api.emit('salt/minion/web01/start', {
    cmd: '_minion_event',
    id: 'web01',
    data: 'Minion web01 started',
    tag: 'salt/minion/web01/start',
  })
  api.emit('salt/cloud/', { name: '' })
  await waitFor('the stream to have seen them', () => stream.state.eventsSeen >= 202, 10_000, 10)
  await scheduler.idle()
  t.equal(api.count('mine.get'), reads, 'no sync for anything of it')
  t.equal(stream.state.eventsUsed, 0)
})

t.test(
  'a destroyed event relayed from a minion is refused; one from a minion in CLOUD_EVENT_MINIONS counts',
  async (t) => {
    const { app, api, ledger, settled, scheduler } = await setup(t, { CLOUD_EVENT_MINIONS: 'cloudrunner' })
    // A second machine: the last key of all gone would be held for a minute (an empty key list).
    api.mine = { web01: ['10.0.0.5'], db01: ['10.0.0.6'] }
    await settled()
    // What `salt-call event.send salt/cloud/web01/destroyed` on a minion puts on the master bus.
    const forged = (id: string) => ({
      cmd: '_minion_event',
      id,
      tag: 'salt/cloud/web01/destroyed',
      data: { name: 'web01' },
      pretag: null,
    })
    api.emit('salt/cloud/web01/destroyed', forged('evil01'))
    await waitFor('the event judged', () => app.saltmasq.intake.counts.stream.refused === 1, 10_000, 10)
    await scheduler.idle()
    t.ok(ledger.has('web01'), 'nothing removed')
    api.deleteKey('web01')
    api.emit('salt/cloud/web01/destroyed', forged('cloudrunner'))
    await waitFor('web01 released', () => !ledger.has('web01'), 10_000, 10)
    await scheduler.idle()
    t.match(scheduler.lastResult?.removed, [{ minionId: 'web01', reason: 'destroyed' }])
  },
)

t.test(
  'a salt/key delete starts the key-gone clock; past DESTROY_WHEN_KEY_GONE_S the reservation is released as key-gone',
  async (t) => {
    const { api, ledger, settled, scheduler, advance } = await setup(t, { DESTROY_WHEN_KEY_GONE_S: '60' })
    await settled()
    // Another machine keeps its key: an empty key list would be held for a minute (mass release).
    api.keys = new Set(['db09'])
    api.mine = {}
    api.emit('salt/key', { act: 'delete', id: 'web01', result: true })
    await waitFor(
      'the key-gone clock to start',
      () => ledger.current.get('web01')?.keyGoneSince !== undefined,
      10_000,
      10,
    )
    await scheduler.idle()
    t.ok(scheduler.lastResult!.keyGoneDueInMs! > 50_000, `due in ${scheduler.lastResult!.keyGoneDueInMs} ms`)
    t.ok(scheduler.nextFollowUpAt !== null, 'the sync that releases it is set')
    advance(61_000)
    const result = await scheduler.sync()
    t.match(result.removed, [{ minionId: 'web01', reason: 'key-gone' }])
    t.notOk(ledger.has('web01'))
  },
)

t.test('a refused key list is said once and the sync carries on', async (t) => {
  const { api, ledger, settled, scheduler } = await setup(t)
  api.wheelDisabled = true
  await settled()
  t.ok(ledger.has('web01'))
  // The key list is read beside the syncs: the one after a failed read says why.
  const said = await waitFor(
    'a sync that says why there is no key list',
    async () => {
      const problem = (await scheduler.sync()).keyListProblem
      return problem ?? undefined
    },
    10_000,
    50,
  )
  t.match(said, /Client disabled: 'wheel'/)
})

t.test('a dropped stream reconnects and resyncs; a session salt-api forgot is renewed', async (t) => {
  const { api, stream, settled, scheduler } = await setup(t)
  await settled()
  const reads = api.count('mine.get')
  api.dropStreams()
  await waitFor('reconnected', () => stream.state.connected && stream.state.reconnects === 1, 15_000, 10)
  await waitFor('the resync after the reconnect', () => api.count('mine.get') === reads + 1, 10_000, 10)
  await scheduler.idle()
  const logins = api.logins
  api.validTokens.clear()
  api.dropStreams()
  await waitFor(
    'reconnected with a new session',
    () => stream.state.connected && stream.state.reconnects === 2,
    15_000,
    10,
  )
  t.equal(api.logins, logins + 1, 'one new login')
})

t.test('the session is renewed before it expires: the stream reconnects on its own, no event needed', async (t) => {
  // A 61.5 s session: saltmasq renews 60 s before expiry, so 1.5 s after the login.
  const { api, stream, settled } = await setup(t, {}, { tokenLifetimeS: 61.5 })
  await settled()
  await waitFor('a planned reconnect', () => stream.state.reconnects >= 1 && stream.state.connected, 15_000, 20)
  t.ok(api.logins >= 2, `logged in again (${api.logins} logins)`)
})

t.test('a stream that cannot connect degrades readiness (after a grace), it does not crash', async (t) => {
  const { app, api, stream, settled, advance } = await setup(t)
  await settled()
  api.eventsDisabled = true
  api.dropStreams()
  await waitFor('the failed reconnect', () => /HTTP 404/.test(stream.state.lastError ?? ''), 15_000, 10)
  await app.saltmasq.readiness.refresh()
  t.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200, 'a moment without the stream is fine')
  advance(11_000)
  const res = await app.inject({ method: 'GET', url: '/ready', headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(res.statusCode, 503)
  t.match(res.json(), {
    reason: /event stream disconnected since .*HTTP 404/,
    detail: { eventStream: { connected: false } },
  })
  const listed = (await app.inject({ method: 'GET', url: '/reservations', headers: auth })).json()
  t.match(listed.eventStream, { connected: false, lastError: /404/ })
  t.ok(listed.events.stream.accepted >= 0)
})

t.test(
  'a bus too busy to trust (salt-api may drop events) gets full syncs while it lasts and once after',
  async (t) => {
    const { api, stream, settled, scheduler, ledger } = await setup(t)
    await settled()
    const reads = api.count('mine.get')
    // A machine whose created event the stream never carries (as when salt-api drops it).
    api.mine = { web01: ['10.0.0.5'], lost01: ['10.0.0.9'] }
    const flood = setInterval(() => {
      for (let i = 0; i < 300; i++) api.emit(`salt/job/2026${i}/ret/node${i}`, { fun: 'test.ping', return: true })
    }, 100)
    t.teardown(() => clearInterval(flood))
    await waitFor('a busy-bus resync', () => stream.state.busyResyncs >= 1, 10_000, 20)
    clearInterval(flood)
    await waitFor('the resync after the bus calmed', () => stream.state.busyResyncs >= 2, 10_000, 20)
    await scheduler.idle()
    t.ok(api.count('mine.get') >= reads + 2, 'full syncs ran')
    t.ok(ledger.has('lost01'), 'the machine whose event was lost is reserved')
  },
)

/** The bytes rest_cherrypy writes for an event whose tag a minion chose: the tag line unescaped. */
function asSaltApiWrites(tag: string, data: unknown): string {
  return `tag: ${tag}\ndata: ${JSON.stringify({ data, tag })}\n\n`
}

t.test(
  'a minion\'s tag cannot make a record: CR and LF injections, pretagged bare data and oversized records change nothing',
  async (t) => {
    const { api, ledger, scheduler, stream, settled } = await setup(t)
    api.mine = { web01: ['10.0.0.5'], db03: ['10.0.0.7'] }
    await settled()
    await scheduler.sync()
    t.ok(ledger.has('db03'))
    // `salt-call event.send $'salt/cloud/x/created\rdata: {...}\r\r'`: a second, bare SSE event to
    // any parser that honours lone CRs.
    const cr = 'salt/cloud/x/created\rdata: {"tag": "salt/cloud/db03/destroyed", "data": {"name": "db03"}}\r\r'
    await api.emitRaw(asSaltApiWrites(cr, { cmd: '_minion_event', id: 'evil01' }))
    // A single LF is allowed on the bus: a forged data line whose JSON swallows the real one.
    const lf = 'salt/cloud/db03/destroyed\ndata: {"tag": "salt/cloud/db03/destroyed", "data": {"name": "db03"}, "x":'
    await api.emitRaw(asSaltApiWrites(lf, { cmd: '_minion_event', id: 'evil01' }))
    // Two tag lines in one record.
    await api.emitRaw(asSaltApiWrites('salt/cloud/db03/destroyed\ntag: salt/cloud/db03/destroyed', { name: 'db03' }))
    // A record over 1 MiB (cut out whole, across many chunks), then an honest one that is still read.
    await api.emitRaw(
      `tag: salt/job/1/ret/web01\ndata: {"tag": "salt/job/1/ret/web01", "data": {"return": "${'x'.repeat(3 * 1024 * 1024)}"}}\n\n`,
    )
    await waitFor('four records refused or cut out', () => stream.state.recordsRefused >= 4, 10_000, 10)
    t.equal(scheduler.backlog, 0, 'no destroy claim was made')
    t.equal(stream.state.eventsUsed, 0)
    api.emit('salt/cloud/db05/created', { name: 'db05' })
    await waitFor(
      'the stream reads on after the oversized record',
      () => stream.state.eventsUsed === 1,
      3_000,
      10,
    ).catch((err: unknown) => {
      t.comment(JSON.stringify(stream.state))
      throw err
    })

    // A pretagged event (a minion's `events` load with a pretag) arrives as the master's own, bare:
    // it is taken as a hint, and the key list says db03's key is accepted: nothing is released.
    api.emit('salt/cloud/db03/destroyed', { name: 'db03' })
    await waitFor('the hint taken', () => stream.state.eventsUsed === 2, 10_000, 10)
    await new Promise((resolve) => setTimeout(resolve, 800))
    await scheduler.idle()
    t.ok(ledger.has('db03'), 'db03 keeps its reservation')
    t.match(stream.state, { connected: true, reconnects: 0 })
  },
)

t.test(
  '10,000 forged created events on the stream: judged at once, a few shared key-list reads, nothing chased, a real machine after them reserved',
  async (t) => {
    const { api, ledger, scheduler, stream, settled, app } = await setup(t)
    await settled()
    const reads = api.count('key.list_all')
    let text = ''
    for (let i = 0; i < 10_000; i++) text += asSaltApiWrites(`salt/cloud/ghost${i}/created`, { name: `ghost${i}` })
    const started = Date.now()
    await api.emitRaw(text)
    api.mine = { web01: ['10.0.0.5'], real01: ['10.0.0.8'] }
    api.emit('salt/cloud/real01/created', { name: 'real01' })
    await waitFor('real01 reserved behind the flood', () => ledger.has('real01'), 20_000, 10)
    t.comment(`10,001 events judged and real01 reserved in ${Date.now() - started} ms`)
    await scheduler.idle()
    t.equal(stream.state.eventsSeen >= 10_001, true)
    t.ok(api.count('key.list_all') - reads <= 4, `key-list reads: ${api.count('key.list_all') - reads}`)
    t.equal(api.count('mine.update'), 0, 'no forged id chased')
    t.equal(scheduler.counts.createdWithoutKey, 10_000)
    t.equal(app.saltmasq.intake.counts.stream.refused, 0)
    t.equal(scheduler.backlog, 0)
  },
)

t.test(
  'salt-api restarted (down for seconds, every session gone): the stream is back within a couple of seconds of it, with one new login',
  async (t) => {
    const { api, stream, settled } = await setup(t)
    await settled()
    const logins = api.logins
    const url = new URL(api.url)
    await api.close()
    api.validTokens.clear()
    // Down long enough for a 30 s backoff to have grown past 16 s.
    await new Promise((resolve) => setTimeout(resolve, 6000))
    await api.listen(undefined, Number(url.port))
    const back = Date.now()
    await waitFor('the stream back', () => stream.state.connected, 15_000, 10)
    const ms = Date.now() - back
    t.ok(ms < 3000, `connected ${ms} ms after salt-api was back`)
    t.equal(api.logins, logins + 1, 'the forgotten session replaced by one login, at once')
  },
)
