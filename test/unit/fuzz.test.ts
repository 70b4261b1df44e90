// Fuzz: thousands of generated webhook bodies and mine snapshots thrown at the service. After
// each, no answer is a 5xx and every line of every dnsmasq file parses under dnsmasq's rules;
// at the end real `dnsmasq --test` accepts the conf-format rendering of everything reserved.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { isIPv4, isIPv6 } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import fc from 'fast-check'
import t from 'tap'
import { pino } from 'pino'
import { buildApp } from '../../src/app.js'
import { LineRenderer } from '../../src/dnsmasq/lines.js'
import { SaltApiStandIn, STANDIN_URL } from '../../lab/salt-api-standin.js'

const RUNS = 5000
const TOKEN = 'fuzz-webhook-token-0123456789abcdefghij'
// fsync on tmpfs costs nothing: the point here is the content, not the disk.
const dir = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'smq-fuzz-'))

const fake = new SaltApiStandIn()
const app = await buildApp({
  env: {
    SALT_API_URL: STANDIN_URL, SALT_API_USER: 'u', SALT_API_PASSWORD: 'salt-secret', WEBHOOK_TOKEN: TOKEN,
    MANAGED_SUBNETS: '10.0.0.0/16,fd00::/64', DNS_DOMAIN: 'lab', RESERVATIONS_FORMAT: 'hostsfile',
    DHCP_HOSTSFILE: join(dir, 'dhcp-hosts'), DHCP_HOSTSDIR: join(dir, 'dhcp-hosts.d'), DNS_HOSTSDIR: join(dir, 'hosts.d'), ADDN_HOSTS_FILE: join(dir, 'addn-hosts'), STATE_FILE: join(dir, 'state.json'),
    DNSMASQ_MINION: 'dns', LOG_LEVEL: 'silent', HOOK_RATE_LIMIT: '1000000', RESYNC_RATE_LIMIT: '1000000', RECONCILE_INTERVAL_S: '0', MINE_WAIT_MS: '0', EVENT_STREAM: 'false',
  },
  logger: pino({ level: 'silent' }),
  dispatcher: fake.mockAgent(),
})
// The app first: a sync still writing delta files into the directory would make rm fail.
t.teardown(async () => {
  await app.close()
  await rm(dir, { recursive: true, force: true })
})

// dnsmasq's own rules, restated independently of src/: a host name is labels of letters,
// digits, '-' and '_' not starting with '-' or '_' (nor, because dnsmasq puts names with capitals
// through IDNA, ending with '-' or with '--' at the third character), and no dhcp-host field
// dnsmasq would read as a lease time, keyword or address; an address is IPv4 or bracketed IPv6.
// (This test found the IDNA rule: an earlier validator let 'Abc-' through and dnsmasq refused it.)
const LABEL = /^(?!..--)[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/
const HOSTNAME = { test: (name: string) => name.split('.').every((l) => LABEL.test(l)) && !/^(\d+[smhdw]?|infinite|ignore)$/i.test(name) && !isIPv4(name) }
const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/
function dhcpHostProblem(line: string): string | null {
  const f = line.split(',')
  const [mac, ip, name] = f.length === 3 ? f : [undefined, f[0] === undefined ? '' : f[1], f[0]]
  if (f.length !== 2 && f.length !== 3) return 'field count'
  if (mac !== undefined && !MAC.test(mac)) return 'mac'
  const bare = ip?.replace(/^\[(.*)\]$/, '$1') ?? ''
  if (!(isIPv4(bare) || (isIPv6(bare) && ip!.startsWith('[')))) return 'address'
  if (name === undefined || !HOSTNAME.test(name) || name.length > 253) return 'name'
  return null
}
function hostsProblem(line: string): string | null {
  const [ip, ...names] = line.split(' ')
  if (ip === undefined || !(isIPv4(ip) || isIPv6(ip))) return 'address'
  if (names.length === 0 || !names.every((n) => HOSTNAME.test(n))) return 'name'
  return null
}
async function fileProblems(): Promise<string[]> {
  const out: string[] = []
  for (const [file, check] of [['dhcp-hosts', dhcpHostProblem], ['addn-hosts', hostsProblem]] as const) {
    const text = await readFile(join(dir, file), 'utf8').catch(() => '')
    if (text !== '' && !text.endsWith('\n')) out.push(`${file}: no final newline`)
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue
      const problem = check(line)
      if (problem !== null) out.push(`${file}: ${problem}: ${JSON.stringify(line)}`)
    }
  }
  return out
}

const nasty = fc.constantFrom('web01', 'web01\ndhcp-range=1.1.1.1', 'a,b', 'x=y', 'sp ace', '$(reboot)', ';rm -rf /', 'wéb', 'ünï', '-lead', '_lead', 'a..b',
  'Abc-', 'AB--C', 'xn--x', '123', '12m', 'infinite', 'IGNORE', '10.0.3.4', 'a-', 'Web_01',
  'a'.repeat(64), 'b'.repeat(300), 'web01.example.com', 'WEB01', '', '\u0000', 'tab\there', 'ok-1', 'x_y')
const minionId = fc.oneof(nasty, fc.string({ maxLength: 20 }), fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,8}$/))
const address = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 255 })).map(([a, b]) => `10.0.${a}.${b}`),
  fc.constantFrom('192.168.1.1', 'fd00::1', 'FD00::0:2', 'fe80::1%eth0', '010.0.0.1', '10.0.0.256', '::1', 'not-an-ip', '10.0.0.1,set:x', '10.0.0.1\nx'),
  fc.string({ maxLength: 12 }),
)
const mineValue = fc.oneof(
  fc.array(fc.oneof(address, fc.integer(), fc.constant(null)), { maxLength: 4 }),
  fc.record({ eth0: fc.record({ hwaddr: fc.oneof(fc.constantFrom('aa:bb:cc:dd:ee:01', 'AA-BB-CC-DD-EE-02', 'zz'), fc.string()), inet: fc.array(fc.record({ address })) }) }),
  fc.constantFrom(null, 'x', 3, true),
)
const mine = fc.dictionary(minionId, mineValue, { maxKeys: 6 })
const tag = fc.oneof(
  minionId.map((id) => `salt/cloud/${id}/created`),
  minionId.map((id) => `salt/cloud/${id}/destroyed`),
  fc.constantFrom('salt/cloud/web01/started', 'salt/minion/x/start', ''),
  fc.string({ maxLength: 40 }),
)
const body = fc.oneof(
  fc.record({ tag, data: fc.oneof(fc.object(), fc.string()) }).map((b) => ({ type: 'application/json', payload: JSON.stringify(b) })),
  fc.jsonValue().map((v) => ({ type: 'application/json', payload: JSON.stringify(v) })),
  fc.string().map((s) => ({ type: 'application/json', payload: s })),
  fc.record({ tag }).map((b) => ({ type: 'application/x-www-form-urlencoded', payload: `tag=${encodeURIComponent(b.tag)}&data=%7B%7D` })),
  fc.string().map((s) => ({ type: 'application/x-www-form-urlencoded', payload: s })),
  fc.tuple(fc.constantFrom('text/plain', 'application/xml', 'multipart/form-data', ''), fc.string()).map(([type, payload]) => ({ type, payload })),
)

t.test(`${RUNS} generated bodies and mine snapshots: never a 5xx, never a line dnsmasq would reject`, async (t) => {
  let fiveXX = 0
  const bad: string[] = []
  const statuses = new Map<number, number>()
  await fc.assert(fc.asyncProperty(body, mine, async (b, m) => {
    fake.mine = m
    const hook = await app.inject({ method: 'POST', url: '/hooks/salt', headers: { authorization: `Bearer ${TOKEN}`, ...(b.type === '' ? {} : { 'content-type': b.type }) }, payload: b.payload })
    const sync = await app.inject({ method: 'POST', url: '/resync?wait=true', headers: { authorization: `Bearer ${TOKEN}` } })
    for (const code of [hook.statusCode, sync.statusCode]) statuses.set(code, (statuses.get(code) ?? 0) + 1)
    if (hook.statusCode >= 500 || sync.statusCode >= 500) fiveXX++
    bad.push(...await fileProblems())
    return hook.statusCode < 500 && sync.statusCode < 500 && bad.length === 0
  }), { numRuns: RUNS })
  t.equal(fiveXX, 0)
  t.same(bad, [])
  t.comment(`${RUNS} runs; answers: ${[...statuses].sort(([a], [b]) => a - b).map(([c, n]) => `${c}×${n}`).join(', ')}; reservations at the end: ${app.saltmasq.ledger.current.size}`)
})

t.test('real dnsmasq --test accepts the conf-format rendering of everything reserved', async (t) => {
  const reservations = [...app.saltmasq.ledger.current.values()]
  t.ok(reservations.length > 0, `${reservations.length} reservations`)
  const conf = join(dir, 'fuzz.conf')
  await writeFile(conf, `port=0\n${new LineRenderer().confFile(reservations)}`)
  const text = await readFile(conf, 'utf8')
  const { stderr } = await promisify(execFile)('dnsmasq', ['--test', `--conf-file=${conf}`]).catch((err: { stderr: string }) => err)
  const line = /at line (\d+)/.exec(stderr)?.[1]
  t.match(stderr, /syntax check OK/, line === undefined ? 'accepted' : `rejected line ${line}: ${text.split('\n')[Number(line) - 1]}`)
})
