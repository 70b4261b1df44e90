// GET /metrics through app.inject: what a sync, a failed sync, events and salt-api calls leave
// in the Prometheus text, and METRICS_TOKEN.
import t from 'tap'
import { pino } from 'pino'
import { buildApp } from '../../src/app.js'
import { SaltApiStandIn } from '../../lab/salt-api-standin.js'
import { waitFor } from '../../lab/processes.js'
import { auth, setup, TOKEN } from '../helpers/app.js'

/** The value of one sample (`name{labels} value`), or undefined when the text has none. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

t.test('open without METRICS_TOKEN, in Prometheus text format', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.match(res.body, /^# HELP saltmasq_syncs_total /m)
  t.match(res.body, /^# TYPE saltmasq_sync_duration_seconds histogram$/m)
  t.match(res.body, /^saltmasq_process_resident_memory_bytes \d+/m, 'the process\'s own metrics too')
  t.equal(sample(res.body, 'saltmasq_last_successful_sync_timestamp_seconds'), 0, 'no sync yet')
})

t.test('a sync, an event and its salt-api calls are counted; reservations and problems are gauged', async (t) => {
  const { app, fake } = await setup(t)
  fake.mine = { web01: ['10.0.0.5'], web02: ['10.0.0.6'], bad: ['192.168.9.9'], zz01: ['10.0.0.5'] }
  await app.inject({ method: 'POST', url: '/hooks/salt', headers: auth, payload: { tag: 'salt/cloud/web01/created', data: { name: 'web01' } } })
  await app.inject({ method: 'POST', url: '/hooks/salt', headers: auth, payload: { tag: 'salt/cloud/../created', data: {} } })
  await app.saltmasq.scheduler.idle()
  const before = Date.now() / 1000
  await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.ok(sample(text, 'saltmasq_syncs_total{outcome="ok"}')! >= 1)
  t.ok(sample(text, 'saltmasq_sync_duration_seconds_count{outcome="ok"}')! >= 1)
  t.ok(sample(text, 'saltmasq_sync_stage_duration_seconds_count{stage="mine"}')! >= 1, 'per stage')
  t.ok(sample(text, 'saltmasq_last_successful_sync_timestamp_seconds')! >= before - 1)
  t.equal(sample(text, 'saltmasq_events_total{source="webhook",kind="created",outcome="accepted"}'), 1)
  t.equal(sample(text, 'saltmasq_reservations{state="active"}'), 2)
  t.equal(sample(text, 'saltmasq_reservations{state="stale"}'), 0)
  t.equal(sample(text, 'saltmasq_last_sync_problems{kind="conflict"}'), 1, 'zz01 wants web01\'s address')
  t.equal(sample(text, 'saltmasq_last_sync_problems{kind="skipped"}'), 1, 'bad has no address in MANAGED_SUBNETS')
  t.ok(sample(text, 'saltmasq_salt_api_calls_total{client="runner",fun="mine.get",outcome="ok"}')! >= 1)
  t.ok(sample(text, 'saltmasq_salt_api_call_duration_seconds_count{client="runner",fun="mine.get"}')! >= 1)
  t.ok(sample(text, 'saltmasq_dnsmasq_applies_total')! >= 1)
  t.equal(sample(text, 'saltmasq_salt_api_calls_total{client="login",fun="login",outcome="ok"}'), 1, 'one login, reused')
  t.equal(sample(text, 'saltmasq_sync_backlog'), 0)

  fake.mine = { web02: ['10.0.0.6'] }
  const gone = await app.inject({ method: 'DELETE', url: '/reservations/web01?wait=true', headers: auth })
  t.equal(gone.statusCode, 200)
  const after = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.equal(sample(after, 'saltmasq_reservations_removed_total{reason="destroyed"}'), 1)
  t.equal(sample(after, 'saltmasq_lease_releases_total{outcome="ok"}'), 1)
  t.notOk(after.includes(TOKEN) || after.includes('salt-secret'), 'no secret in the metrics')
})

t.test('a failed sync is counted by its error code, and the owed apply shows', async (t) => {
  const { app, fake } = await setup(t)
  fake.mine = { web01: ['10.0.0.5'] }
  fake.local.set('service.restart', { retcode: 1, stderr: 'failed', stdout: '' })
  t.equal((await app.inject({ method: 'POST', url: '/resync?wait=true', headers: auth })).statusCode, 502)
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.equal(sample(text, 'saltmasq_syncs_total{outcome="SALTMASQ_APPLY_FAILED"}'), 1)
  t.ok(sample(text, 'saltmasq_dnsmasq_apply_owed_since_timestamp_seconds')! > 0, 'an apply is owed')
  t.ok(sample(text, 'saltmasq_salt_api_calls_total{client="local",fun="service.restart",outcome="ok"}')! >= 1, 'salt-api answered: the failure was dnsmasq\'s')
})

t.test('with METRICS_TOKEN, /metrics wants it', async (t) => {
  const metricsToken = 'metrics-token-0123456789abcdefghijklmnop'
  const { app } = await setup(t, { METRICS_TOKEN: metricsToken })
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 401)
  t.equal((await app.inject({ method: 'GET', url: '/metrics', headers: auth })).statusCode, 401, 'not the webhook token')
  t.equal((await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${metricsToken}` } })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, '/health stays open')
})

t.test('the event stream: connected, events read, and events by source', async (t) => {
  const api = await SaltApiStandIn.listening({ web01: ['10.0.0.5'] })
  t.teardown(async () => { await api.close() })
  const { app: plain } = await setup(t)
  t.notMatch((await plain.inject({ method: 'GET', url: '/metrics' })).body, /saltmasq_event_stream_connected/, 'no stream metrics when EVENT_STREAM is off')
  const dir = t.testdir()
  const app = await buildApp({
    env: {
      ...api.env, WEBHOOK_TOKEN: TOKEN, MANAGED_SUBNETS: '10.0.0.0/16', DNSMASQ_MINION: 'dns', LOG_LEVEL: 'silent',
      DHCP_HOSTSFILE: `${dir}/dhcp-hosts`, DHCP_HOSTSDIR: `${dir}/dhcp-hosts.d`, DNS_HOSTSDIR: `${dir}/hosts.d`, ADDN_HOSTS_FILE: `${dir}/addn-hosts`, STATE_FILE: `${dir}/state.json`,
    },
    logger: pino({ level: 'silent' }),
  })
  t.teardown(async () => { await app.close() })
  await waitFor('the stream open', () => api.streams === 1, 10_000, 10)
  api.emit('salt/job/1/ret/web01', { id: 'web01', return: true })
  api.emit('salt/cloud/web01/created', { name: 'web01' })
  await waitFor('both read', () => app.saltmasq.stream!.state.eventsSeen === 2, 10_000, 10)
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.equal(sample(text, 'saltmasq_event_stream_connected'), 1)
  t.equal(sample(text, 'saltmasq_event_stream_events_total'), 2)
  t.equal(sample(text, 'saltmasq_event_stream_reconnects_total'), 0)
  t.equal(sample(text, 'saltmasq_events_total{source="stream",kind="created",outcome="accepted"}'), 1, 'a job return is not judged at all: filtered on its tag')
  api.dropStreams()
  await waitFor('reconnected', () => app.saltmasq.stream!.state.reconnects === 1 && app.saltmasq.stream!.state.connected, 30_000, 20)
  t.equal(sample((await app.inject({ method: 'GET', url: '/metrics' })).body, 'saltmasq_event_stream_reconnects_total'), 1)
})
