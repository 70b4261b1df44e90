// The container image, proven: docker/Dockerfile built on a local Node 22 base (no image
// registry is reachable here), run the way docker/compose.yaml runs it (host network, env file,
// the default format's directory and the state directory mounted, uid 10080, read-only root)
// against a real master, salt-api, minions and dnsmasq: /health, /ready, syncs that write the
// mounted files, an event through the stream, and SIGTERM.
import { chown, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { Lab } from '../../lab/lab.js'
import { Podman } from '../../lab/podman.js'
import { freePort, waitFor } from '../../lab/processes.js'
import { saltmasqVersion } from '../../src/util/version.js'

const lab = await Lab.start({ minions: [{ id: 'web01', ips: ['10.77.0.11'] }], reactor: false })
const name = `saltmasq-image-test-${process.pid}`
const podman = await Podman.open(lab.dir)
t.teardown(async () => {
  await podman.run(['rm', '--force', '--time', '0', name])
  await lab.stop()
})

const tag = `localhost/saltmasq:${await saltmasqVersion()}`
const port = await freePort()
const url = `http://127.0.0.1:${port}`
const hostsDir = join(lab.dns.dir, 'hosts') // dhcp-hosts, addn-hosts: /etc/dnsmasq.saltmasq in the container
const stateDir = join(lab.dir, 'saltmasq-state')

async function get(path: string, token?: string): Promise<{ status: number, body: any }> {
  try {
    const res = await fetch(`${url}${path}`, {
      method: path.startsWith('/resync') ? 'POST' : 'GET',
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    })
    const text = await res.text()
    try {
      return { status: res.status, body: JSON.parse(text) }
    } catch {
      return { status: res.status, body: text }
    }
  } catch {
    return { status: 0, body: null }
  }
}

t.test('docker/Dockerfile builds on a local Node 22 base', async (t) => {
  const base = await podman.localBase()
  await podman.build(base, tag)
  const node = (
    await podman.must([
      'run', '--rm', '--ulimit', 'host', '--network', 'host', '--no-healthcheck', tag, 'node', '--version',
    ])
  ).trim()
  t.match(node, /^v22\./, `the image runs Node ${node}`)
  const user = (await podman.must(['image', 'inspect', '--format', '{{.Config.User}}', tag])).trim()
  t.equal(user, '10080:10080', 'an unprivileged user')
  const listing = (
    await podman.must([
      'run', '--rm', '--ulimit', 'host', '--network', 'host', '--no-healthcheck', tag, 'sh', '-c',
      'ls -A /app; ls /app/dist/src',
    ])
  ).split('\n')
  t.same(
    listing.slice(0, 3),
    ['dist', 'node_modules', 'package.json'],
    'only what it runs: no sources, tests, .venv or benchmarks',
  )
  t.notOk(listing.includes('lab'), 'the test lab is not in the image')
})

t.test('run as compose runs it, against the real Salt lab', async (t) => {
  await mkdir(stateDir, { recursive: true })
  // The uid of the image's user must own what it writes (README, docker/compose.yaml).
  for (const dir of [hostsDir, join(hostsDir, 'dhcp-hosts.d'), join(hostsDir, 'hosts.d'), stateDir])
    await chown(dir, 10080, 10080)
  for (const file of ['dhcp-hosts', 'addn-hosts']) await chown(join(hostsDir, file), 10080, 10080)
  const env = lab.saltmasqEnv('hostsfile', { HOST: '127.0.0.1', PORT: String(port), DNS_DOMAIN: 'lab' })
  // The container uses the default paths, under the mounted directories.
  for (const key of [
    'RESERVATIONS_FILE', 'DHCP_HOSTSFILE', 'ADDN_HOSTS_FILE', 'DHCP_HOSTSDIR', 'DNS_HOSTSDIR', 'STATE_FILE',
  ])
    delete env[key]
  const envFile = join(lab.dir, 'saltmasq.env')
  await writeFile(
    envFile,
    Object.entries(env)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
    { mode: 0o600 },
  )
  await podman.must([
    'run', '--detach', '--name', name, '--ulimit', 'host', '--network', 'host', '--no-healthcheck', '--read-only',
    '--user', '10080:10080', '--env-file', envFile, '-v', `${hostsDir}:/etc/dnsmasq.saltmasq`, '-v',
    `${stateDir}:/var/lib/saltmasq`, tag,
  ])

  await waitFor('/health', async () => (await get('/health')).status === 200, 60_000, 200)
  const pid = (await podman.must(['inspect', '--format', '{{.State.Pid}}', name])).trim()
  t.match(await readFile(`/proc/${pid}/status`, 'utf8'), /^Uid:\s+10080\s/m, 'saltmasq runs as uid 10080')
  await waitFor('/ready', async () => (await get('/ready')).status === 200, 90_000, 250)
  t.pass('/ready: salt-api answered, the first sync worked, the stream is connected')

  // The first sync at start wrote the mounted files, and dnsmasq (outside) took them in.
  // dnsmasq's base file was there (empty) before: web01 came as a delta file beside it.
  const deltas = (await readdir(join(hostsDir, 'dhcp-hosts.d'))).map((name) => join(hostsDir, 'dhcp-hosts.d', name))
  const holding = []
  for (const file of [join(hostsDir, 'dhcp-hosts'), ...deltas])
    if (/^web01,10\.77\.0\.11$/m.test(await readFile(file, 'utf8'))) holding.push(file)
  t.equal(holding.length, 1, `the mounted files hold web01's line once: ${holding.join(', ')}`)
  t.equal((await stat(holding[0]!)).uid, 10080, 'written by uid 10080')
  t.ok((await stat(join(stateDir, 'state.json'))).isFile(), 'the state file in the mounted state directory')
  await waitFor(
    'dnsmasq answering for web01.lab',
    async () => (await lab.dns.resolve('web01.lab')).includes('10.77.0.11'),
    30_000,
    100,
  )

  // A machine created now reaches the container through salt-api's event stream.
  const [app01] = await lab.salt.load.registerFakeMinions(1, '10.77.5', 'app')
  await lab.salt.load.fireCloudEvents('created', 1, app01)
  await waitFor(
    'app000.lab answered',
    async () => (await lab.dns.resolve('app000.lab')).includes('10.77.5.10'),
    60_000,
    100,
  )
  const listed = await get('/reservations', lab.token)
  t.same(listed.body.reservations.map((r: { minionId: string }) => r.minionId).sort(), ['app000', 'web01'])
  t.match(listed.body.events, { stream: { accepted: 1 } }, 'through the stream')
  t.match((await get('/metrics')).body, /^saltmasq_event_stream_connected 1$/m, '/metrics')

  // The image's HEALTHCHECK command, run in the container.
  const health = JSON.parse(
    await podman.must(['image', 'inspect', '--format', '{{json .Config.Healthcheck.Test}}', tag]),
  ) as string[]
  t.equal(health[0], 'CMD')
  t.equal((await podman.run(['exec', name, ...health.slice(1)])).code, 0, 'the HEALTHCHECK passes')

  // SIGTERM (docker stop): the sync in flight finishes, the process exits 0.
  await get('/resync', lab.token)
  const stopped = Date.now()
  await podman.must(['kill', '--signal', 'TERM', name])
  const code = (await podman.must(['wait', name], 60_000)).trim()
  t.equal(code, '0', `exit code 0 after SIGTERM, in ${Date.now() - stopped} ms`)
  const logs = await podman.must(['logs', name])
  t.match(logs, /"msg":"saltmasq [^"]+ started"/, 'the start line')
  t.notOk(logs.includes(lab.token) || logs.includes(lab.salt.apiPassword), 'no secret in the log')
})
