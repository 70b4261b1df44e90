// The saltmasq execution module (salt/states/_modules/saltmasq.py) run by the venv's Python with
// a stand-in for Salt's config.get: its paths come from configuration, never from the caller,
// and reload signals only a process that is dnsmasq.
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { run } from '../../src/lab/processes.js'
import { saltFiles, venvBin } from '../../src/lab/paths.js'

async function call (settings: Record<string, string>, expr: string): Promise<{ result: boolean, comment: string }> {
  const script = [
    'import json, sys',
    `sys.path.insert(0, ${JSON.stringify(join(saltFiles, 'states', '_modules'))})`,
    'import saltmasq',
    `settings = json.loads(${JSON.stringify(JSON.stringify(settings))})`,
    "saltmasq.__salt__ = {'config.get': lambda key, default=None: settings.get(key, default)}",
    `print(json.dumps(${expr}))`,
  ].join('\n')
  const res = await run(join(venvBin, 'python3'), ['-c', script])
  if (res.code !== 0) throw new Error(res.stderr)
  return JSON.parse(res.stdout) as { result: boolean, comment: string }
}

t.test('no function takes a path argument', async (t) => {
  const res = await run(join(venvBin, 'python3'), ['-c', `import inspect, sys; sys.path.insert(0, ${JSON.stringify(join(saltFiles, 'states', '_modules'))}); import saltmasq; print([str(inspect.signature(f)) for f in (saltmasq.reload, saltmasq.check, saltmasq.release_lease)])`])
  t.equal(res.stdout.trim(), "['()', '()', '(ip, interface)']")
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
