// The HTTP interface through app.inject, with salt-api faked on undici's MockAgent.
import { readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { pino } from 'pino'
import { waitFor } from '../../lab/processes.js'
import { buildApp } from '../../src/app.js'
import { STANDIN_URL, type SaltApiStandIn } from '../../lab/salt-api-standin.js'
import { auth, setup, TOKEN } from '../helpers/app.js'

/** The local-client calls made, in order (the background probe and key list reads left out). */
function localCalls(fake: SaltApiStandIn): unknown[] {
  return fake.calls.map((c) => c.body).filter((b) => Array.isArray(b) && (b as Array<{ client?: string }>).some((x) => x.client === 'local'))
}

t.test('each request is one debug line (probes included), and a first start logs its empty ledger at info', async (t) => {
  const lines: Array<{ level: number, msg: string, url?: string }> = []
  const logger = pino({ level: 'debug' }, { write: (line: string) => { lines.push(JSON.parse(line)) } })
  const { app } = await setup(t, { LOG_LEVEL: 'debug' }, logger)
  await app.inject({ method: 'GET', url: '/health' })
  await app.inject({ method: 'GET', url: '/ready' })
  const requests = lines.filter((l) => l.url === '/health' || l.url === '/ready')
  t.same(requests.map((l) => [l.level, l.msg, l.url]), [[20, 'request', '/health'], [20, 'request', '/ready']])
  t.notOk(lines.some((l) => l.msg === 'incoming request' || l.msg === 'request completed'), 'not Fastify\'s two lines')
  const start = lines.find((l) => /state file/.test(l.msg))
  t.match(start, { level: 30, msg: /no state file and no reservations published yet/ }, 'info, not a warning')
})

t.test('health needs no token', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject({ method: 'GET', url: '/health' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
})

t.test('hooks, resync and reservations refuse a missing or wrong token with 401', async (t) => {
  const { app } = await setup(t)
  for (const [method, url] of [['POST', '/hooks/salt'], ['POST', '/resync'], ['GET', '/reservations'], ['DELETE', '/reservations/web01']] as const) {
    for (const authorization of [undefined, 'Bearer nope', `Basic ${TOKEN}`, `Bearer ${TOKEN}x`]) {
      const res = await app.inject({ method, url, headers: authorization === undefined ? {} : { authorization }, payload: { tag: 'salt/cloud/web01/created' } })
      t.equal(res.statusCode, 401, `${method} ${url} with ${authorization ?? 'no header'}`)
      t.equal(res.json().code, 'SALTMASQ_UNAUTHORIZED')
    }
  }
})

t.test('without a token every protected route answers 401 before the body is parsed or validated', async (t) => {
  const { app, fake } = await setup(t)
  const routes = [['POST', '/hooks/salt'], ['POST', '/resync?wait=maybe'], ['GET', '/reservations'], ['DELETE', '/reservations/bad%20id?wait=x']] as const
  const bodies: Array<[string, string]> = [
    ['application/json', '{"tag": '], // broken JSON
    ['application/json', JSON.stringify({ tag: 5, data: [] })], // fails the schema
    ['application/x-www-form-urlencoded', 'tag=salt%2Fcloud%2F-bad%2Fcreated'], // a form with a bad id
    ['application/xml', '<tag/>'], // no parser at all
    ['application/json', JSON.stringify({ tag: 'salt/cloud/web01/created', data: { x: 'y'.repeat(100_000) } })], // over the body limit
  ]
  for (const [method, url] of routes) {
    for (const [type, payload] of bodies) {
      for (const headers of [{}, { authorization: 'Bearer wrong' }, { 'webhook-signature': 'v1,AAAA', 'webhook-id': 'x', 'webhook-timestamp': '1' }]) {
        const res = await app.inject({ method, url, headers: { 'content-type': type, ...headers }, payload })
        t.equal(res.statusCode, 401, `${method} ${url} ${type} ${JSON.stringify(headers)}`)
        t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'])
        t.equal(res.json().code, 'SALTMASQ_UNAUTHORIZED', 'no parser or schema detail leaks')
      }
    }
  }
  // (the background readiness probe and key list read run; a sync would read the mine)
  t.equal(fake.count('mine.get'), 0, 'and no sync ran')
})

t.test('a created event as JSON is accepted with 202 and leads to a sync that reserves the minion', async (t) => {
  const { app, fake, dir } = await setup(t)
  fake.mine = { web01: ['192.168.1.1', '10.0.0.5'] }
  const res = await app.inject({ method: 'POST', url: '/hooks/salt', headers: auth, payload: { tag: 'salt/cloud/web01/created', data: { name: 'web01', profile: 'p' } } })
  t.equal(res.statusCode, 202)
  t.same(res.json(), { accepted: true, event: 'created', minionId: 'web01' })
  await app.saltmasq.scheduler.idle()
  const listed = await app.inject({ method: 'GET', url: '/reservations', headers: auth })
  t.same(listed.json().reservations.map((r: { minionId: string, ip: string }) => [r.minionId, r.ip]), [['web01', '10.0.0.5']])
  t.match(await readFile(join(dir, 'reservations.conf'), 'utf8'), /^dhcp-host=web01,10\.0\.0\.5$/m)
  const local = localCalls(fake)
  t.match(local.at(-2), [{ client: 'local', tgt: 'dns', fun: 'saltmasq.check', arg: [] }], 'conf format: dnsmasq --test first')
  t.match(local.at(-1), [{ client: 'local', tgt: 'dns', fun: 'service.restart', arg: ['dnsmasq'] }], 'then the restart')
})

t.test('a url-encoded event (http.query with a dict body) is accepted too', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject({
    method: 'POST',
    url: '/hooks/salt',
    headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
    payload: `tag=${encodeURIComponent('salt/cloud/web01/destroyed')}&data=${encodeURIComponent('{\'name\': \'web01\'}')}`,
  })
  t.equal(res.statusCode, 202)
  t.same(res.json(), { accepted: true, event: 'destroyed', minionId: 'web01' })
})

t.test('a cloud event relayed from a minion is refused with 403 and acted on only for CLOUD_EVENT_MINIONS', async (t) => {
  const { app, fake } = await setup(t, { CLOUD_EVENT_MINIONS: 'cloudhost, other' })
  // A second machine: the last key of all gone would be held for a minute (an empty key list).
  fake.mine = { web01: ['10.0.0.5'], db01: ['10.0.0.6'] }
  await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  const relayed = (id: string) => ({ tag: 'salt/cloud/web01/destroyed', data: { cmd: '_minion_event', id, tag: 'salt/cloud/web01/destroyed', data: { name: 'web01' } } })
  const forged = await app.inject({ method: 'POST', url: '/hooks/salt', headers: auth, payload: relayed('evil01') })
  t.equal(forged.statusCode, 403)
  t.match(forged.json(), { code: 'SALTMASQ_EVENT_FROM_MINION', message: /came from minion evil01, not from the master/ })
  const asForm = await app.inject({
    method: 'POST', url: '/hooks/salt', headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
    payload: `tag=${encodeURIComponent('salt/cloud/web01/destroyed')}&data=${encodeURIComponent('{\'cmd\': \'_minion_event\', \'id\': \'evil01\'}')}`,
  })
  t.equal(asForm.statusCode, 403, 'a url-encoded body that says the same')
  await app.saltmasq.scheduler.idle()
  t.ok(app.saltmasq.ledger.has('web01'), 'nothing removed')
  t.equal(app.saltmasq.intake.counts.webhook.refused, 2)

  const allowed = await app.inject({ method: 'POST', url: '/hooks/salt', headers: auth, payload: relayed('cloudhost') })
  t.equal(allowed.statusCode, 202)
  await app.saltmasq.scheduler.idle()
  t.ok(app.saltmasq.ledger.has('web01'), 'an event that counts is still only a hint: the key is accepted, so the reservation stays')
  t.equal(app.saltmasq.scheduler.backlog, 1, 'the destroy waits for the key list to confirm it')
  fake.deleteKey('web01')
  await waitFor('the key list to confirm the destroy', () => !app.saltmasq.ledger.has('web01'), 5000, 10)
  await app.saltmasq.scheduler.idle()
  t.notOk(app.saltmasq.ledger.has('web01'), 'a listed minion\'s event counts once the key is gone')
  const listed = (await app.inject({ method: 'GET', url: '/reservations', headers: auth })).json()
  t.match(listed.events.webhook, { accepted: 1, refused: 2 })
  t.equal(listed.eventStream, null, 'EVENT_STREAM=false')
})

t.test('bad webhook input gets a 4xx that says what is wrong', async (t) => {
  const { app } = await setup(t)
  const cases: Array<[string, unknown, number, RegExp]> = [
    ['application/json', { tag: 'salt/cloud/web01/started' }, 400, /salt\/cloud\/<minion id>\/created/],
    ['application/json', { tag: 'salt/minion/web01/start' }, 400, /is not salt\/cloud/],
    ['application/json', { data: {} }, 400, /must have required property 'tag'/],
    ['application/json', { tag: 'salt/cloud/web 01/created' }, 400, /not a valid dnsmasq host name/],
    ['application/json', { tag: 'salt/cloud/-web/created' }, 400, /may not start/],
    ['application/json', { tag: `salt/cloud/${'a'.repeat(300)}/created` }, 400, /at most 253/],
    ['application/json', { tag: `salt/cloud/${'a'.repeat(64)}.b/created` }, 400, /at most 63/],
    ['application/json', { tag: 'salt/cloud/web,01/created' }, 400, /not a valid dnsmasq host name/],
    ['application/json', { tag: 'salt/cloud/wéb/created' }, 400, /not a valid dnsmasq host name/],
    ['application/json', { tag: 5 }, 400, /tag '5' is not salt\/cloud/],
    ['application/json', { tag: ['a', 'b'] }, 400, /tag must be string/],
    ['application/json', '{"tag": ', 400, /JSON/],
    ['text/plain', 'tag=salt/cloud/web01/created', 400, /body must be object/],
    ['application/xml', '<tag/>', 415, /Unsupported Media Type/],
  ]
  for (const [type, payload, status, message] of cases) {
    const res = await app.inject({ method: 'POST', url: '/hooks/salt', headers: { ...auth, 'content-type': type }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) })
    t.equal(res.statusCode, status, JSON.stringify(payload))
    t.match(res.json().message, message)
  }
  const huge = await app.inject({ method: 'POST', url: '/hooks/salt', headers: auth, payload: { tag: 'salt/cloud/web01/created', data: { x: 'y'.repeat(100_000) } } })
  t.equal(huge.statusCode, 413)
})

t.test('resync?wait=true returns the diff; without wait it answers 202', async (t) => {
  const { app, fake } = await setup(t)
  fake.mine = { web01: ['10.0.0.5'], db01: ['10.0.0.6'], other: ['172.16.0.1'] }
  const first = await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  t.equal(first.statusCode, 200)
  const r = first.json()
  t.same(r.added.map((a: { minionId: string }) => a.minionId), ['db01', 'web01'])
  t.same(r.skipped.map((s: { minionId: string }) => s.minionId), ['other'])
  t.equal(r.applied, true)
  t.equal(r.filesChanged.length, 1)

  fake.mine = { web01: ['10.0.0.5'] }
  const second = (await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })).json()
  t.same(second.kept, ['db01', 'web01'])
  t.same(second.stale.map((s: { minionId: string }) => s.minionId), ['db01'], 'gone from the mine: kept, marked stale')
  t.equal(second.applied, false)

  const queued = await app.inject({ method: 'POST', url: '/resync', headers: auth })
  t.equal(queued.statusCode, 202)
  const bad = await app.inject({ method: 'POST', url: '/resync?wait=maybe', headers: auth })
  t.equal(bad.statusCode, 400)
})

t.test('a failing apply is a 502 naming the minion and the reason, /ready says so, and the next sync applies again', async (t) => {
  const { app, fake } = await setup(t)
  fake.mine = { web01: ['10.0.0.5'] }
  fake.local.set('service.restart', { retcode: 1, stderr: 'Job for dnsmasq.service failed', stdout: '' })
  const res = await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  t.equal(res.statusCode, 502)
  t.match(res.json(), { code: 'SALTMASQ_APPLY_FAILED', message: /service\.restart on dns failed: exit code 1: Job for dnsmasq/ })
  await app.saltmasq.readiness.refresh()
  const ready = await app.inject({ method: 'GET', url: '/ready', headers: auth })
  t.equal(ready.statusCode, 503)
  t.match(ready.json().reason, /last sync failed/)

  fake.local.set('service.restart', undefined)
  t.match((await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })).json(), { code: 'SALTMASQ_APPLY_NO_MINION' })

  // Each failure also scheduled a retry with backoff (within 1 s, then 2 s): on a slow run that retry
  // can be the sync that makes the owed apply, so count the applies rather than ask who made it.
  const restartsBefore = fake.count('service.restart')
  fake.local.set('service.restart', true)
  const retry = (await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })).json()
  t.same(retry.filesChanged, [], 'the file was already written')
  await app.saltmasq.scheduler.idle()
  t.equal(fake.count('service.restart') - restartsBefore, 1, 'but the owed apply is made, once')
  t.equal(app.saltmasq.publisher.owed, null, 'nothing is owed any more')
  t.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200)
})

t.test('/ready is 503 until the first sync has worked, even with salt-api reachable', async (t) => {
  const { app, fake } = await setup(t)
  fake.mine = { web01: ['10.0.0.5'] }
  await app.saltmasq.readiness.refresh()
  const before = await app.inject({ method: 'GET', url: '/ready', headers: auth })
  t.equal(before.statusCode, 503)
  t.match(before.json(), { reason: 'no sync has completed yet', detail: { saltApi: { reachable: true }, lastSync: null } })
  await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  t.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200)
})

t.test('/ready is 503 with the reason when salt-api refuses the login', async (t) => {
  const { app } = await setup(t, { SALT_API_PASSWORD: 'wrong' })
  await app.saltmasq.readiness.refresh()
  const res = await app.inject({ method: 'GET', url: '/ready', headers: auth })
  t.equal(res.statusCode, 503)
  t.match(res.json().reason, /refused the (last )?login/)
  t.notMatch(res.body, /wrong/)
  const open = await app.inject({ method: 'GET', url: '/ready' })
  t.equal(open.statusCode, 503, 'a probe without the token sees the same status')
  t.same(open.json(), { ready: false, reason: 'salt-api is unreachable' }, 'and only a brief reason: no error text, no detail')
  const wrongToken = await app.inject({ method: 'GET', url: '/ready', headers: { authorization: 'Bearer not-the-token' } })
  t.same(wrongToken.json(), { ready: false, reason: 'salt-api is unreachable' })
})

t.test('without a token, /ready and /metrics name no minion and carry no error text', async (t) => {
  const { app, fake } = await setup(t, { DNSMASQ_PUBLISH: 'salt', RESERVATIONS_FORMAT: 'hostsfile', DNSMASQ_MINION: 'dns*' })
  fake.mine = { 'web01': ['10.0.0.5'], 'evil-minion': ['10.0.0.6'] }
  await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  const open = await app.inject({ method: 'GET', url: '/ready' })
  t.notMatch(open.body, /web01|evil-minion|dns|error/)
  const full = await app.inject({ method: 'GET', url: '/ready', headers: auth })
  t.match(full.json(), { detail: { saltApi: {} } }, 'the detail comes with the token')
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.notMatch(metrics, /minion="[^"]/, 'no minion label value in open metrics')
  t.notMatch(metrics, /web01|evil-minion/)
})

t.test('DELETE /reservations/:id removes a reservation; unknown and invalid ids are 404 and 400', async (t) => {
  const { app, fake } = await setup(t)
  fake.mine = { web01: ['10.0.0.5'] }
  await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  t.equal((await app.inject({ method: 'DELETE', url: '/reservations/nope', headers: auth })).statusCode, 404)
  t.equal((await app.inject({ method: 'DELETE', url: '/reservations/bad%20id', headers: auth })).statusCode, 400)
  const res = await app.inject({ method: 'DELETE', url: '/reservations/web01?wait=true', headers: auth })
  t.equal(res.statusCode, 200)
  t.same(res.json().removed.map((r: { minionId: string }) => r.minionId), ['web01'])
  t.same((await app.inject({ method: 'GET', url: '/reservations', headers: auth })).json().reservations, [])
})

t.test('a restart keeps every reservation (state file), and a lost state file is rebuilt from the dnsmasq file', async (t) => {
  const { app, fake, dir } = await setup(t)
  fake.mine = { web01: ['10.0.0.5'] }
  await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  await app.close()

  const env = { RESERVATIONS_FILE: join(dir, 'reservations.conf'), STATE_FILE: join(dir, 'state.json') }
  const again = await setup(t, env)
  t.same((await again.app.inject({ method: 'GET', url: '/reservations', headers: auth })).json().reservations.map((r: { ip: string }) => r.ip), ['10.0.0.5'])
  await again.app.close()

  await rm(join(dir, 'state.json'))
  const rebuilt = await setup(t, env)
  t.same((await rebuilt.app.inject({ method: 'GET', url: '/reservations', headers: auth })).json().reservations.map((r: { ip: string }) => r.ip), ['10.0.0.5'])
  await rebuilt.app.close()

  await writeFile(join(dir, 'state.json'), '{not json')
  await t.rejects(setup(t, env), { code: 'SALTMASQ_STATE_CORRUPT' }, 'a damaged state file stops start-up rather than losing reservations')
})

t.test('configuration errors stop start-up and name the variable', async (t) => {
  const base = { SALT_API_URL: STANDIN_URL, SALT_API_USER: 'u', SALT_API_PASSWORD: 'p', WEBHOOK_TOKEN: TOKEN, MANAGED_SUBNETS: '10.0.0.0/8', DNSMASQ_MINION: 'dns' }
  const cases: Array<[Record<string, string | undefined>, RegExp]> = [
    [{ WEBHOOK_TOKEN: undefined }, /WEBHOOK_TOKEN/],
    [{ WEBHOOK_TOKEN: 'short' }, /WEBHOOK_TOKEN must NOT have fewer than 32 characters/],
    [{ SALT_API_URL: 'ftp://x' }, /SALT_API_URL/],
    [{ PORT: '99999' }, /PORT/],
    [{ MANAGED_SUBNETS: '10.0.0.0' }, /MANAGED_SUBNETS: '10\.0\.0\.0' is not a CIDR/],
    [{ DNSMASQ_APPLY_ARGS: 'dnsmasq' }, /DNSMASQ_APPLY_ARGS: must be a JSON array/],
    [{ DNSMASQ_APPLY_ARGS: '[1]' }, /DNSMASQ_APPLY_ARGS: must be a JSON array/],
    [{ RESERVATIONS_FORMAT: 'yaml' }, /RESERVATIONS_FORMAT/],
    [{ DNS_DOMAIN: 'bad domain' }, /DNS_DOMAIN/],
    [{ STATE_FILE: '' }, /STATE_FILE/],
    [{ DNSMASQ_TEST_ARGS: '{}' }, /DNSMASQ_TEST_ARGS/],
    [{ DNSMASQ_MINION: undefined }, /DNSMASQ_MINION/],
    [{ RESERVATIONS_FORMAT: 'hostsdir', DHCP_HOSTSDIR: '/srv/dns/d', DNS_HOSTSDIR: '/srv/dns/./d/' }, /DNS_HOSTSDIR: must not be the same directory as DHCP_HOSTSDIR/],
    [{ RELOAD_MIN_INTERVAL_S: '-1' }, /RELOAD_MIN_INTERVAL_S/],
    [{ CLOUD_EVENT_MINIONS: 'ok, bad id' }, /CLOUD_EVENT_MINIONS: 'bad id' is not a minion id/],
    [{ DESTROY_WHEN_KEY_GONE_S: '-5' }, /DESTROY_WHEN_KEY_GONE_S/],
    [{ STREAM_MAX_AGE_S: '1' }, /STREAM_MAX_AGE_S/],
    [{ EVENT_STREAM: 'maybe' }, /EVENT_STREAM/],
  ]
  for (const [change, message] of cases) {
    await t.rejects(buildApp({ env: { ...base, ...change }, logger: pino({ level: 'silent' }) }), { message }, JSON.stringify(change))
  }
})

t.test('conf format: when dnsmasq --test rejects the new file, the previous one is put back and nothing restarts', async (t) => {
  const { app, fake, dir } = await setup(t)
  fake.mine = { web01: ['10.0.0.5'] }
  await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  const before = await readFile(join(dir, 'reservations.conf'), 'utf8')
  fake.mine = { web01: ['10.0.0.5'], web02: ['10.0.0.6'] }
  fake.local.set('saltmasq.check', 'ERROR: dnsmasq --test: dnsmasq: duplicate dhcp-host IP address 10.0.0.6 at line 3 of /etc/dnsmasq.d/manual.conf')
  const restartsBefore = fake.calls.filter((c) => JSON.stringify(c.body).includes('service.restart')).length
  const res = await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  t.equal(res.statusCode, 502)
  t.match(res.json(), { code: 'SALTMASQ_DNSMASQ_CHECK_FAILED', message: /previous file was restored.*duplicate dhcp-host IP address 10\.0\.0\.6/ })
  t.equal(await readFile(join(dir, 'reservations.conf'), 'utf8'), before)
  t.equal(fake.calls.filter((c) => JSON.stringify(c.body).includes('service.restart')).length, restartsBefore, 'no restart')
})

t.test('hostsdir format: a file per reservation in each directory, and no call to dnsmasq at all', async (t) => {
  const { app, fake, dir } = await setup(t, { RESERVATIONS_FORMAT: 'hostsdir', DNS_DOMAIN: 'lab' })
  fake.mine = { 'web01': ['10.0.0.5'], 'db.example.com': ['10.0.0.6'] }
  const result = (await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })).json()
  t.equal(result.applied, false)
  t.equal(result.entriesWritten, 4)
  t.equal(await readFile(join(dir, 'dhcp-hosts.d', 'web01'), 'utf8'), '# Managed by saltmasq. Any change made here will be overwritten.\nweb01,10.0.0.5\n')
  t.match(await readFile(join(dir, 'hosts.d', 'web01'), 'utf8'), /^10\.0\.0\.5 web01 web01\.lab$/m)
  t.match(await readFile(join(dir, 'hosts.d', 'db.example.com'), 'utf8'), /^10\.0\.0\.6 db\.example\.com$/m)
  t.same(fake.calls.filter((c) => JSON.stringify(c.body).includes('"local"')), [], 'inotify does the rest')
})

t.test('hostsfile format (the default): two files, applied with saltmasq.reload, no --test', async (t) => {
  const { app, fake, dir } = await setup(t, { RESERVATIONS_FORMAT: undefined, DNS_DOMAIN: 'lab' })
  t.equal(app.saltmasq.config.format, 'hostsfile')
  fake.mine = { web01: ['10.0.0.5'] }
  const result = (await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })).json()
  t.same(result.filesChanged, [join(dir, 'dhcp-hosts'), join(dir, 'addn-hosts')])
  t.match(await readFile(join(dir, 'dhcp-hosts'), 'utf8'), /^web01,10\.0\.0\.5$/m)
  t.match(await readFile(join(dir, 'addn-hosts'), 'utf8'), /^10\.0\.0\.5 web01 web01\.lab$/m)
  const local = fake.calls.filter((c) => JSON.stringify(c.body).includes('"local"')).map((c) => (c.body as Array<{ fun: string, arg: string[] }>)[0])
  t.same(local, [{ client: 'local', tgt: 'dns', fun: 'saltmasq.reload', arg: [] }])
})

t.test('destroyed: the reservation goes, then the lease is released through salt-api; a failed release is reported, not fatal', async (t) => {
  const { app, fake } = await setup(t, { DNSMASQ_RELEASE_ARGS: '["interface=br0"]' })
  fake.mine = { web01: ['10.0.0.5'], web02: ['10.0.0.6'] }
  await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  fake.mine = {}
  const ok = (await app.inject({ method: 'DELETE', url: '/reservations/web01?wait=true', headers: auth })).json()
  t.same(ok.released, ['10.0.0.5'])
  t.match(localCalls(fake).at(-1), [{ client: 'local', tgt: 'dns', fun: 'saltmasq.release_lease', arg: ['10.0.0.5', 'interface=br0'] }])
  fake.local.set('saltmasq.release_lease', 'ERROR: dhcp_release failed: no such interface')
  const failed = await app.inject({ method: 'DELETE', url: '/reservations/web02?wait=true', headers: auth })
  t.equal(failed.statusCode, 200)
  t.same(failed.json().removed.map((r: { minionId: string }) => r.minionId), ['web02'])
  t.match(failed.json().releaseFailures, [{ minionId: 'web02', ip: '10.0.0.6', reason: /no such interface/ }])
})

t.test('Standard Webhooks signatures: accepted when valid, refused when wrong, stale or replayed', async (t) => {
  const { sign } = await import('../../src/http/signature.js')
  const secret = Buffer.from('0123456789abcdef0123456789abcdef')
  const { app } = await setup(t, { WEBHOOK_HMAC_SECRET: `whsec_${secret.toString('base64')}` })
  const body = JSON.stringify({ tag: 'salt/cloud/web01/created', data: { name: 'web01' } })
  const now = Math.floor(Date.now() / 1000)
  const signed = (id: string, ts: number, signature = sign(id, ts, body, secret)) => ({
    'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signature,
  })
  const post = async (headers: Record<string, string>, payload = body) => await app.inject({ method: 'POST', url: '/hooks/salt', headers, payload })

  t.equal((await post(signed('msg_1', now))).statusCode, 202, 'valid signature, no bearer token needed')
  const replay = await post(signed('msg_1', now))
  t.equal(replay.statusCode, 401)
  t.match(replay.json().message, /already used/)
  t.match((await post(signed('msg_2', now - 600))).json().message, /more than 300 s/)
  t.match((await post(signed('msg_3', now), body.replace('web01', 'web02'))).json().message, /no v1 signature matches/, 'a changed body breaks the signature')
  t.match((await post({ ...signed('msg_4', now), 'webhook-signature': 'v1,AAAA' })).json().message, /no v1 signature matches/)
  t.match((await post({ 'content-type': 'application/json', 'webhook-signature': 'v1,x' })).json().message, /are all required/)
  t.equal((await post({ 'content-type': 'application/json', ...auth })).statusCode, 202, 'the reactor\'s bearer token still works')

  // The signature is checked on the raw bytes before any parser: a bad signature over junk is a
  // 401, never a 400 or 415 that would tell an unauthenticated caller about the parsers.
  for (const [type, junk] of [['application/json', '{"tag": '], ['application/xml', '<tag/>'], ['application/json', JSON.stringify({ tag: 7 })]] as const) {
    const res = await post({ ...signed(`junk_${type}_${junk.length}`, now, 'v1,AAAA'), 'content-type': type }, junk)
    t.equal(res.statusCode, 401, `${type} ${junk}`)
    t.equal(res.json().code, 'SALTMASQ_BAD_SIGNATURE')
  }
  // A signed form body (what a signing relay in front of http.query would send) parses as usual.
  const form = `tag=${encodeURIComponent('salt/cloud/web02/destroyed')}`
  const formRes = await post({ ...signed('msg_form', now, sign('msg_form', now, form, secret)), 'content-type': 'application/x-www-form-urlencoded' }, form)
  t.equal(formRes.statusCode, 202)
  t.same(formRes.json(), { accepted: true, event: 'destroyed', minionId: 'web02' })
  // Signed but invalid once parsed: now the caller is known, so the 400 says what is wrong.
  const bad = JSON.stringify({ tag: 'salt/cloud/-web/created' })
  const badRes = await post(signed('msg_bad', now, sign('msg_bad', now, bad, secret)), bad)
  t.equal(badRes.statusCode, 400)
  t.match(badRes.json().message, /may not start/)
})

t.test('hooks and resync are rate limited with a 429', async (t) => {
  const { app } = await setup(t, { HOOK_RATE_LIMIT: '3', RESYNC_RATE_LIMIT: '1' })
  const codes = []
  for (let i = 0; i < 4; i++) codes.push((await app.inject({ method: 'POST', url: '/hooks/salt', headers: auth, payload: { tag: 'salt/cloud/web01/created' } })).statusCode)
  t.same(codes, [202, 202, 202, 429])
  t.equal((await app.inject({ method: 'POST', url: '/resync', headers: auth })).statusCode, 202)
  const limited = await app.inject({ method: 'POST', url: '/resync', headers: auth })
  t.equal(limited.statusCode, 429)
  t.match(limited.json().message, /Rate limit exceeded/)
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'health is not limited')
})

t.test('SALT_API_INSECURE must be explicit, and says so in the log', async (t) => {
  const lines: string[] = []
  const logger = pino({ level: 'warn' }, { write: (line: string) => { lines.push(line) } })
  const app = await buildApp({
    env: { SALT_API_URL: 'https://127.0.0.1:1', EVENT_STREAM: 'false', SALT_API_USER: 'u', SALT_API_PASSWORD: 'p', WEBHOOK_TOKEN: TOKEN, MANAGED_SUBNETS: '10.0.0.0/8', DNSMASQ_MINION: 'dns', SALT_API_INSECURE: 'true', LOG_LEVEL: 'warn', STATE_FILE: join(tmpdir(), `smq-insecure-${process.pid}.json`), RESERVATIONS_FORMAT: 'conf', RESERVATIONS_FILE: join(tmpdir(), `smq-insecure-${process.pid}.conf`) },
    logger,
  })
  await app.close()
  t.equal(app.saltmasq.config.salt.insecure, true)
  t.match(lines.join(''), /SALT_API_INSECURE=true: salt-api's TLS certificate is not verified/)
})
