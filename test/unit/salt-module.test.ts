// The saltmasq execution module (salt/states/_modules/saltmasq.py) run by the venv's Python with
// a stand-in for Salt's config.get: its paths come from configuration, never from the caller,
// and reload signals only a process that is dnsmasq.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { deflateSync } from 'node:zlib'
import { lstat, readdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { lineDelta } from '../../src/dnsmasq/line-delta.js'
import { run } from '../../src/lab/processes.js'
import { saltFiles, venvBin } from '../../src/lab/paths.js'

async function call (settings: Record<string, unknown>, expr: string): Promise<{ result: boolean, comment: string }> {
  const script = [
    'import json, sys',
    `sys.path.insert(0, ${JSON.stringify(join(saltFiles, 'states', '_modules'))})`,
    'import saltmasq',
    `settings = json.loads(${JSON.stringify(JSON.stringify(settings))})`,
    // The service functions record that they were called (in the result of `calls()`).
    'service_calls = []',
    "saltmasq.__salt__ = {'config.get': lambda key, default=None: settings.get(key, default), 'service.reload': lambda name: service_calls.append('reload ' + name) or True, 'service.restart': lambda name: service_calls.append('restart ' + name) or True}",
    'calls = lambda: service_calls',
    `print(json.dumps(${expr}))`,
  ].join('\n')
  const res = await run(join(venvBin, 'python3'), ['-c', script])
  if (res.code !== 0) throw new Error(res.stderr)
  return JSON.parse(res.stdout) as { result: boolean, comment: string }
}

t.test('no function takes a path argument', async (t) => {
  const res = await run(join(venvBin, 'python3'), ['-c', `import inspect, sys; sys.path.insert(0, ${JSON.stringify(join(saltFiles, 'states', '_modules'))}); import saltmasq; print([str(inspect.signature(f)) for f in (saltmasq.reload, saltmasq.check, saltmasq.release_lease, saltmasq.publish)])`])
  t.equal(res.stdout.trim(), "['()', '()', '(ip, interface)', \"(files, apply='none', force_apply=False)\"]")
})

t.test('reload by pid file refuses a pid that is not dnsmasq, and says why', async (t) => {
  const dir = t.testdir()
  // A live process that is not dnsmasq: SIGHUP would kill it.
  const victim = spawn('sleep', ['60'])
  t.teardown(() => { victim.kill() })
  const pidfile = join(dir, 'dnsmasq.pid')
  await writeFile(pidfile, `${victim.pid}\n`)
  const refused = await call({ 'saltmasq:dnsmasq:reload': 'pidfile', 'saltmasq:dnsmasq:pidfile': pidfile }, 'saltmasq.reload()')
  t.equal(refused.result, false)
  t.match(refused.comment, new RegExp(`names pid ${victim.pid}, which is not a running dnsmasq`))
  t.equal(victim.exitCode, null, 'the process was not signalled')
  t.equal(victim.signalCode, null)

  const missing = await call({ 'saltmasq:dnsmasq:reload': 'pidfile', 'saltmasq:dnsmasq:pidfile': join(dir, 'nope.pid') }, 'saltmasq.reload()')
  t.match(missing, { result: false, comment: /cannot read dnsmasq's pid from .*nope\.pid/ })
  await writeFile(pidfile, '1\n')
  t.match(await call({ 'saltmasq:dnsmasq:reload': 'pidfile', 'saltmasq:dnsmasq:pidfile': pidfile }, 'saltmasq.reload()'), { result: false }, 'never pid 1')
})

t.test('reload asks the service manager when told to (or under systemd)', async (t) => {
  const out = await run(join(venvBin, 'python3'), ['-c', [
    'import json, sys',
    `sys.path.insert(0, ${JSON.stringify(join(saltFiles, 'states', '_modules'))})`,
    'import saltmasq',
    'calls = []',
    "saltmasq.__salt__ = {'config.get': lambda key, default=None: {'saltmasq:dnsmasq:reload': 'service'}.get(key, default), 'service.reload': lambda name: calls.append(name) or True}",
    'print(json.dumps([saltmasq.reload(), calls]))',
  ].join('\n')])
  t.same(JSON.parse(out.stdout), [{ result: true, comment: 'service.reload dnsmasq' }, ['dnsmasq']])
})

t.test('release_lease reads the configured lease file', async (t) => {
  const dir = t.testdir({ 'leases': '' })
  const res = await call({ 'saltmasq:dnsmasq:leasefile': join(dir, 'leases') }, "saltmasq.release_lease('10.0.0.5', 'br0')")
  t.match(res, { result: true, comment: 'released 0 lease(s) of 10.0.0.5' })
  t.match(await call({}, "saltmasq.release_lease('10.0.0.5', 'br0; rm -rf /')"), { result: false, comment: /not an interface name/ })
})

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')
const HEAD = '# Managed by saltmasq.\n'

t.test('publish writes whole files, then deltas against the content it confirmed, and tells dnsmasq only when a file changed', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'dhcp-hosts')
  const settings = { 'saltmasq:dnsmasq:publish_dirs': [dir], 'saltmasq:dnsmasq:reload': 'service' }
  const v1 = `${HEAD}web01,10.0.0.5\nweb03,10.0.0.7\n`
  const first = await call(settings, `[saltmasq.publish([{'path': ${JSON.stringify(path)}, 'hash': '${sha256(v1)}', 'content': ${JSON.stringify(v1)}}], apply='reload'), calls()]`) as unknown as [Record<string, unknown>, string[]]
  t.match(first[0], { result: true, applied: true, files: { [path]: { status: 'written', hash: sha256(v1) } } })
  t.same(first[1], ['reload dnsmasq'])
  t.equal(await readFile(path, 'utf8'), v1)

  // web03 (line 2; the header is line 0) becomes web02: one hunk against v1's lines.
  const v2 = `${HEAD}web01,10.0.0.5\nweb02,10.0.0.6\n`
  const delta = `{'path': ${JSON.stringify(path)}, 'hash': '${sha256(v2)}', 'base': '${sha256(v1)}', 'hunks': [[2, 1, ['web02,10.0.0.6']]]}`
  const second = await call(settings, `[saltmasq.publish([${delta}], apply='reload'), calls()]`) as unknown as [Record<string, unknown>, string[]]
  t.match(second[0], { result: true, applied: true, files: { [path]: { status: 'written', hash: sha256(v2) } } })
  t.equal(await readFile(path, 'utf8'), v2)

  const again = await call(settings, `[saltmasq.publish([{'path': ${JSON.stringify(path)}, 'hash': '${sha256(v2)}', 'base': '${sha256(v2)}', 'hunks': []}], apply='reload'), calls()]`) as unknown as [Record<string, unknown>, string[]]
  t.match(again[0], { result: true, applied: false, files: { [path]: { status: 'unchanged' } } })
  t.same(again[1], [], 'nothing changed: dnsmasq is not told')
  const forced = await call(settings, `[saltmasq.publish([{'path': ${JSON.stringify(path)}, 'hash': '${sha256(v2)}', 'base': '${sha256(v2)}', 'hunks': []}], apply='reload', force_apply=True), calls()]`) as unknown as [Record<string, unknown>, string[]]
  t.match(forced, [{ result: true, applied: true }, ['reload dnsmasq']], 'an apply still owed is made with no change')

  // Hand-edited: the delta does not apply, nothing is written, the caller is told to send it whole.
  await writeFile(path, `${v2}evil,10.0.0.99\n`)
  const edited = await call(settings, `saltmasq.publish([${delta.replace(sha256(v1), sha256(v2)).replace("[[2, 1, ['web02,10.0.0.6']]]", '[]')}], apply='reload')`) as unknown as Record<string, unknown>
  t.match(edited, { result: false, stale: true, applied: false, files: { [path]: { status: 'stale', hash: sha256(`${v2}evil,10.0.0.99\n`) } } })
  t.equal(await readFile(path, 'utf8'), `${v2}evil,10.0.0.99\n`, 'nothing written on a stale base')
  const bad = await call(settings, `saltmasq.publish([{'path': ${JSON.stringify(path)}, 'hash': '${sha256(v1)}', 'base': '${sha256(`${v2}evil,10.0.0.99\n`)}', 'hunks': [[1, 0, ['x\\nport=0']]]}])`) as unknown as Record<string, unknown>
  t.match(bad, { result: false, stale: true }, 'a hunk line holding a newline is refused')
})

t.test('publish writes only right inside publish_dirs, whatever the caller sends', async (t) => {
  const dir = t.testdir({ inside: {}, outside: {} })
  const inside = join(dir, 'inside')
  await symlink('/etc/passwd', join(inside, 'link'))
  const settings = { 'saltmasq:dnsmasq:publish_dirs': [inside] }
  const one = (path: string): string => `saltmasq.publish([{'path': ${JSON.stringify(path)}, 'hash': '${sha256('x\n')}', 'content': 'x\\n'}])`
  t.match(await call({}, one(join(inside, 'f'))), { result: false, comment: /publish_dirs is not set/ })
  for (const path of [join(dir, 'outside', 'f'), `${inside}/../outside/f`, join(inside, 'link'), join(inside, '.hidden'), 'relative/f', join(inside, 'sub', 'f'), '/etc/passwd']) {
    t.match(await call(settings, one(path)), { result: false, comment: /refused .* not a file right inside saltmasq:dnsmasq:publish_dirs/ }, path)
  }
  t.same(await readdir(join(dir, 'outside')), [])
  t.equal((await lstat(join(inside, 'link'))).isSymbolicLink(), true, 'the link is still a link')
  t.match(await call(settings, one(join(inside, 'f'))), { result: true, files: { [join(inside, 'f')]: { status: 'written' } } })
  t.match(await call(settings, `saltmasq.publish([], apply='restart everything')`), { result: false, comment: /apply must be one of/ })
})

t.test('publish with checked-restart puts the previous file back when dnsmasq --test rejects the new one', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'reservations.conf')
  const good = `${HEAD}dhcp-host=web01,10.0.0.5\n`
  await writeFile(path, good)
  const settings = { 'saltmasq:dnsmasq:publish_dirs': [dir], 'saltmasq:dnsmasq:conf_file': path }
  const broken = `${HEAD}not-a-dnsmasq-option=1\n`
  const rejected = await call(settings, `[saltmasq.publish([{'path': ${JSON.stringify(path)}, 'hash': '${sha256(broken)}', 'content': ${JSON.stringify(broken)}}], apply='checked-restart'), calls()]`) as unknown as [Record<string, unknown>, string[]]
  t.match(rejected, [{ result: false, applied: false, comment: /dnsmasq --test rejected the files/, files: { [path]: { status: 'rolled-back', hash: sha256(good) } } }, []])
  t.equal(await readFile(path, 'utf8'), good, 'the previous file is back')
  const next = `${HEAD}dhcp-host=web01,10.0.0.5\ndhcp-host=web02,10.0.0.6\n`
  const accepted = await call(settings, `[saltmasq.publish([{'path': ${JSON.stringify(path)}, 'hash': '${sha256(next)}', 'content': ${JSON.stringify(next)}}], apply='checked-restart'), calls()]`) as unknown as [Record<string, unknown>, string[]]
  t.match(accepted, [{ result: true, applied: true }, ['restart dnsmasq']])
})

t.test("the module applies saltmasq's own deltas to the same bytes saltmasq rendered", async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'addn-hosts')
  const settings = { 'saltmasq:dnsmasq:publish_dirs': [dir] }
  const base = [HEAD.trimEnd(), ...Array.from({ length: 400 }, (_, i) => `10.0.${i >> 8}.${i & 255} vm${i}`)]
  const next = base.filter((_, i) => i % 37 !== 5).map((l, i) => i % 53 === 7 ? `${l} vm-alias${i}` : l)
  next.splice(120, 0, '10.9.0.1 newcomer', '10.9.0.2 newcomer2')
  const text = (lines: string[]): string => lines.map((l) => `${l}\n`).join('')
  await writeFile(path, text(base))
  const hunks = lineDelta(base, next, 2000)
  t.ok(hunks !== null && hunks.length > 10, `${hunks?.length} hunks`)
  const res = await call(settings, `saltmasq.publish([json.loads(${JSON.stringify(JSON.stringify({ path, hash: sha256(text(next)), base: sha256(text(base)), hunks }))})])`)
  t.match(res, { result: true, files: { [path]: { status: 'written', hash: sha256(text(next)) } } })
  t.equal(await readFile(path, 'utf8'), text(next))
})

t.test('publish takes whole files compressed, and refuses what does not inflate to the hash or inflates too far', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'dhcp-hosts')
  const settings = { 'saltmasq:dnsmasq:publish_dirs': [dir] }
  const content = `${HEAD}${'aa:bb:cc:dd:ee:ff,10.0.0.1,vm\n'.repeat(100)}`
  const packed = deflateSync(content).toString('base64')
  const one = (deflate: string, hash = sha256(content)): string => `saltmasq.publish([{'path': ${JSON.stringify(path)}, 'hash': '${hash}', 'deflate': ${JSON.stringify(deflate)}}])`
  t.match(await call(settings, one(packed)), { result: true, files: { [path]: { status: 'written', hash: sha256(content) } } })
  t.equal(await readFile(path, 'utf8'), content)
  t.match(await call(settings, one('not base64 at all!')), { result: false, stale: true })
  t.match(await call(settings, one(packed, sha256('something else'))), { result: false, stale: true })
  t.match(await call(settings, `[setattr(saltmasq, '_MAX_FILE_BYTES', 1000), ${one(packed)}][1]`), { result: false, stale: true }, 'a file larger than the limit is never expanded')
})
