// The saltmasq execution module (salt/states/_modules/saltmasq.py) loaded by Salt's own loader
// (test/helpers/salt_module.py): its paths come from configuration, never from the caller, reload
// signals only a process that is dnsmasq, and a refusal is raised as Salt's modules raise it.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { deflateSync } from 'node:zlib'
import { lstat, readdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { lineDelta } from '../../src/dnsmasq/line-delta.js'
import { run } from '../../lab/processes.js'
import { repoRoot, saltFiles, venvBin } from '../../lab/paths.js'

const HARNESS = join(repoRoot, 'test', 'helpers', 'salt_module.py')
const MODULES = join(saltFiles, 'states', '_modules')

/** The value of `expr` with the module loaded under `settings`, or `{ error, message }` for what it raised. */
async function call(settings: Record<string, unknown>, expr: string): Promise<any> {
  const res = await run(join(venvBin, 'python3'), [HARNESS, MODULES, JSON.stringify(settings), expr])
  if (res.code !== 0) throw new Error(res.stderr)
  return JSON.parse(res.stdout)
}

t.test('no function takes a path argument', async (t) => {
  const signatures = await call({}, '[str(__import__("inspect").signature(saltmasq.__getattr__(f).func)) for f in ("reload", "check", "release_lease", "publish")]')
  t.same(signatures, ['()', '()', '(ip, interface)', '(files, apply=\'none\', force_apply=False)'])
  const listed = await call({}, 'sorted(f for f in mods if f.startswith("saltmasq."))')
  t.same(listed, ['saltmasq.check', 'saltmasq.publish', 'saltmasq.release_lease', 'saltmasq.reload'], 'the loader sees the four functions, and no helper')
})

t.test('reload by pid file refuses a pid that is not dnsmasq, and says why', async (t) => {
  const dir = t.testdir()
  // A live process that is not dnsmasq: SIGHUP would kill it.
  const victim = spawn('sleep', ['60'])
  t.teardown(() => { victim.kill() })
  const pidfile = join(dir, 'dnsmasq.pid')
  await writeFile(pidfile, `${victim.pid}\n`)
  const refused = await call({ 'saltmasq:dnsmasq:reload': 'pidfile', 'saltmasq:dnsmasq:pidfile': pidfile }, 'saltmasq.reload()')
  t.equal(refused.error, 'CommandExecutionError')
  t.match(refused.message, new RegExp(`names pid ${victim.pid}, which is not a running dnsmasq`))
  t.equal(victim.exitCode, null, 'the process was not signalled')
  t.equal(victim.signalCode, null)

  const missing = await call({ 'saltmasq:dnsmasq:reload': 'pidfile', 'saltmasq:dnsmasq:pidfile': join(dir, 'nope.pid') }, 'saltmasq.reload()')
  t.match(missing, { error: 'CommandExecutionError', message: /cannot read dnsmasq's pid from .*nope\.pid/ })
  await writeFile(pidfile, '1\n')
  t.match(await call({ 'saltmasq:dnsmasq:reload': 'pidfile', 'saltmasq:dnsmasq:pidfile': pidfile }, 'saltmasq.reload()'), { error: 'CommandExecutionError' }, 'never pid 1')
})

t.test('reload asks the service manager when told to (or under systemd)', async (t) => {
  t.same(await call({ 'saltmasq:dnsmasq:reload': 'service' }, '[saltmasq.reload(), calls()]'), [true, ['reload dnsmasq']])
})

t.test('release_lease reads the configured lease file', async (t) => {
  const dir = t.testdir({ leases: '' })
  const res = await call({ 'saltmasq:dnsmasq:leasefile': join(dir, 'leases') }, 'saltmasq.release_lease(\'10.0.0.5\', \'br0\')')
  t.same(res, { released: [], comment: 'released 0 lease(s) of 10.0.0.5' })
  t.match(await call({}, 'saltmasq.release_lease(\'10.0.0.5\', \'br0; rm -rf /\')'), { error: 'SaltInvocationError', message: /not an interface name/ })
})

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')
const HEAD = '# Managed by saltmasq.\n'

t.test('publish writes whole files, then deltas against the content it confirmed, and tells dnsmasq only when a file changed', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'dhcp-hosts')
  const settings = { 'saltmasq:dnsmasq:files': { 'dhcp-hosts': path }, 'saltmasq:dnsmasq:reload': 'service' }
  const v1 = `${HEAD}web01,10.0.0.5\nweb03,10.0.0.7\n`
  const first = await call(settings, `[saltmasq.publish([{'role': 'dhcp-hosts', 'hash': '${sha256(v1)}', 'content': ${JSON.stringify(v1)}}], apply='reload'), calls()]`) as unknown as [Record<string, unknown>, string[]]
  t.match(first[0], { result: true, applied: true, files: { 'dhcp-hosts': { status: 'written', hash: sha256(v1) } } })
  t.same(first[1], ['reload dnsmasq'])
  t.equal(await readFile(path, 'utf8'), v1)

  // web03 (line 2; the header is line 0) becomes web02: one hunk against v1's lines.
  const v2 = `${HEAD}web01,10.0.0.5\nweb02,10.0.0.6\n`
  const delta = `{'role': 'dhcp-hosts', 'hash': '${sha256(v2)}', 'base': '${sha256(v1)}', 'hunks': [[2, 1, ['web02,10.0.0.6']]]}`
  const second = await call(settings, `[saltmasq.publish([${delta}], apply='reload'), calls()]`) as unknown as [Record<string, unknown>, string[]]
  t.match(second[0], { result: true, applied: true, files: { 'dhcp-hosts': { status: 'written', hash: sha256(v2) } } })
  t.equal(await readFile(path, 'utf8'), v2)

  const again = await call(settings, `[saltmasq.publish([{'role': 'dhcp-hosts', 'hash': '${sha256(v2)}', 'base': '${sha256(v2)}', 'hunks': []}], apply='reload'), calls()]`) as unknown as [Record<string, unknown>, string[]]
  t.match(again[0], { result: true, applied: false, files: { 'dhcp-hosts': { status: 'unchanged' } } })
  t.same(again[1], [], 'nothing changed: dnsmasq is not told')
  const forced = await call(settings, `[saltmasq.publish([{'role': 'dhcp-hosts', 'hash': '${sha256(v2)}', 'base': '${sha256(v2)}', 'hunks': []}], apply='reload', force_apply=True), calls()]`) as unknown as [Record<string, unknown>, string[]]
  t.match(forced, [{ result: true, applied: true }, ['reload dnsmasq']], 'an apply still owed is made with no change')

  // Hand-edited: the delta does not apply, nothing is written, the caller is told to send it whole.
  await writeFile(path, `${v2}evil,10.0.0.99\n`)
  const edited = await call(settings, `saltmasq.publish([${delta.replace(sha256(v1), sha256(v2)).replace('[[2, 1, [\'web02,10.0.0.6\']]]', '[]')}], apply='reload')`) as unknown as Record<string, unknown>
  t.match(edited, { result: false, stale: true, applied: false, files: { 'dhcp-hosts': { status: 'stale', hash: sha256(`${v2}evil,10.0.0.99\n`) } } })
  t.equal(await readFile(path, 'utf8'), `${v2}evil,10.0.0.99\n`, 'nothing written on a stale base')
  const bad = await call(settings, `saltmasq.publish([{'role': 'dhcp-hosts', 'hash': '${sha256(v1)}', 'base': '${sha256(`${v2}evil,10.0.0.99\n`)}', 'hunks': [[1, 0, ['x\\nport=0']]]}])`) as unknown as Record<string, unknown>
  t.match(bad, { result: false, stale: true }, 'a hunk line holding a newline is refused')
})

t.test('publish writes only the path each role is set to, and only reservation lines: never a directive, whatever the caller sends', async (t) => {
  const dir = t.testdir({ 'hosts': {}, 'dnsmasq.d': {} })
  const dhcp = join(dir, 'hosts', 'dhcp-hosts')
  const conf = join(dir, 'dnsmasq.d', 'reservations.conf')
  const addn = join(dir, 'hosts', 'addn-hosts')
  await symlink('/etc/passwd', join(dir, 'hosts', 'link'))
  const settings = { 'saltmasq:dnsmasq:files': { 'dhcp-hosts': dhcp, 'reservations-conf': conf, 'addn-hosts': addn, 'other': '/etc/passwd' } }
  const one = (role: string, content: string): string => `saltmasq.publish([{'role': ${JSON.stringify(role)}, 'hash': '${sha256(content)}', 'content': ${JSON.stringify(content)}}])`
  t.match(await call({}, one('dhcp-hosts', `${HEAD}web01,10.0.0.5\n`)), { error: 'CommandExecutionError', message: /saltmasq:dnsmasq:files is not set/ })
  for (const role of ['other', '/etc/passwd', 'dhcp-hostsx', '']) {
    t.match(await call(settings, one(role, `${HEAD}web01,10.0.0.5\n`)), { error: 'CommandExecutionError', message: /refused role .*sets a path only for addn-hosts, dhcp-hosts, reservations-conf/ }, role)
  }
  t.match(await call({ 'saltmasq:dnsmasq:files': { 'dhcp-hosts': join(dir, 'hosts', 'link') } }, one('dhcp-hosts', `${HEAD}web01,10.0.0.5\n`)), { error: 'CommandExecutionError' }, 'a role set to a link is not written')
  // What a holder of saltmasq's credential could try: every one refused before anything is written or checked.
  const hostile: Array<[string, string]> = [
    ['reservations-conf', 'conf-script=/bin/sh -c "id > /tmp/pwned"'],
    ['reservations-conf', 'dhcp-host=web01,10.0.0.5\nconf-dir=/tmp'],
    ['reservations-conf', 'addn-hosts=/etc/shadow'],
    ['dhcp-hosts', 'web01,10.0.0.5,set:pxe'],
    ['dhcp-hosts', 'web01,10.0.0.5,infinite'],
    ['dhcp-hosts', 'aa:bb:cc:dd:ee:ff,10.0.0.5,web01,ignore'],
    ['dhcp-hosts', 'web01,999.0.0.5'],
    ['dhcp-hosts', 'web01,10.0.0.5\r'],
    ['addn-hosts', '10.0.0.5 web01 -bad'],
    ['addn-hosts', '10.0.0.5\tweb01'],
    ['addn-hosts', 'web01 10.0.0.5'],
  ]
  for (const [role, line] of hostile) {
    t.match(await call(settings, one(role, `${HEAD}${line}\n`)), { error: 'CommandExecutionError', message: new RegExp(`refused ${role}: .*nothing was written`) }, `${role}: ${JSON.stringify(line)}`)
  }
  t.same(await readdir(join(dir, 'dnsmasq.d')), [], 'nothing written in the conf-dir')
  t.same(await readdir(join(dir, 'hosts')), ['link'])
  const good: Array<[string, string, string]> = [
    ['dhcp-hosts', dhcp, `${HEAD}web01,10.0.0.5\naa:bb:cc:dd:ee:ff,[fd00::5],db01.example.com\n`],
    ['reservations-conf', conf, `${HEAD}dhcp-host=web01,10.0.0.5\n`],
    ['addn-hosts', addn, `${HEAD}10.0.0.5 web01 web01.lab\nfd00::5 db01.example.com\n`],
  ]
  for (const [role, path, content] of good) {
    t.match(await call(settings, one(role, content)), { result: true, files: { [role]: { status: 'written' } } }, role)
    t.equal(await readFile(path, 'utf8'), content)
  }
  t.equal((await lstat(join(dir, 'hosts', 'link'))).isSymbolicLink(), true, 'the link is still a link')
  t.match(await call(settings, `saltmasq.publish([], apply='restart everything')`), { error: 'SaltInvocationError', message: /apply must be one of/ })
})

t.test('publish with checked-restart puts the previous file back when dnsmasq --test rejects the new one', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'reservations.conf')
  const good = `${HEAD}dhcp-host=web01,10.0.0.5\n`
  await writeFile(path, good)
  const settings = { 'saltmasq:dnsmasq:files': { 'reservations-conf': path }, 'saltmasq:dnsmasq:conf_file': path }
  // Reservation lines, each well-formed, that dnsmasq still refuses together: one address twice.
  const broken = `${HEAD}dhcp-host=web01,10.0.0.5\ndhcp-host=web02,10.0.0.5\n`
  const rejected = await call(settings, `saltmasq.publish([{'role': 'reservations-conf', 'hash': '${sha256(broken)}', 'content': ${JSON.stringify(broken)}}], apply='checked-restart')`)
  t.match(rejected, { error: 'CommandExecutionError', message: /dnsmasq --test rejected the files, so the previous ones were put back: .*duplicate/ })
  t.same(await call(settings, 'calls()'), [], 'no restart')
  t.equal(await readFile(path, 'utf8'), good, 'the previous file is back')
  const next = `${HEAD}dhcp-host=web01,10.0.0.5\ndhcp-host=web02,10.0.0.6\n`
  const accepted = await call(settings, `[saltmasq.publish([{'role': 'reservations-conf', 'hash': '${sha256(next)}', 'content': ${JSON.stringify(next)}}], apply='checked-restart'), calls()]`) as unknown as [Record<string, unknown>, string[]]
  t.match(accepted, [{ result: true, applied: true }, ['restart dnsmasq']])
})

t.test('the module applies saltmasq\'s own deltas to the same bytes saltmasq rendered', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'addn-hosts')
  const settings = { 'saltmasq:dnsmasq:files': { 'addn-hosts': path } }
  const base = [HEAD.trimEnd(), ...Array.from({ length: 400 }, (_, i) => `10.0.${i >> 8}.${i & 255} vm${i}`)]
  const next = base.filter((_, i) => i % 37 !== 5).map((l, i) => i % 53 === 7 ? `${l} vm-alias${i}` : l)
  next.splice(120, 0, '10.9.0.1 newcomer', '10.9.0.2 newcomer2')
  const text = (lines: string[]): string => lines.map((l) => `${l}\n`).join('')
  await writeFile(path, text(base))
  const hunks = lineDelta(base, next, 2000)
  t.ok(hunks !== null && hunks.length > 10, `${hunks?.length} hunks`)
  const res = await call(settings, `saltmasq.publish([json.loads(${JSON.stringify(JSON.stringify({ role: 'addn-hosts', hash: sha256(text(next)), base: sha256(text(base)), hunks }))})])`)
  t.match(res, { result: true, files: { 'addn-hosts': { status: 'written', hash: sha256(text(next)) } } })
  t.equal(await readFile(path, 'utf8'), text(next))
})

t.test('publish takes whole files compressed, and refuses what does not inflate to the hash or inflates too far', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'dhcp-hosts')
  const settings = { 'saltmasq:dnsmasq:files': { 'dhcp-hosts': path } }
  const content = `${HEAD}${'aa:bb:cc:dd:ee:ff,10.0.0.1,vm\n'.repeat(100)}`
  const packed = deflateSync(content).toString('base64')
  const one = (deflate: string, hash = sha256(content)): string => `saltmasq.publish([{'role': 'dhcp-hosts', 'hash': '${hash}', 'deflate': ${JSON.stringify(deflate)}}])`
  t.match(await call(settings, one(packed)), { result: true, files: { 'dhcp-hosts': { status: 'written', hash: sha256(content) } } })
  t.equal(await readFile(path, 'utf8'), content)
  t.match(await call(settings, one('not base64 at all!')), { result: false, stale: true })
  t.match(await call(settings, one(packed, sha256('something else'))), { result: false, stale: true })
  t.match(await call(settings, `[setattr(saltmasq, '_MAX_FILE_BYTES', 1000), ${one(packed)}][1]`), { result: false, stale: true }, 'a file larger than the limit is never expanded')
})
