// Starting saltmasq the way a person does: the real process (dist/src/server.js, what `npm
// start` runs) with a .env file, with bad settings, and with a disk that fills up.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { repoRoot } from '../../lab/paths.js'
import { captured, freePort, mustRun, run, waitFor } from '../../lab/processes.js'
import { SaltApiStandIn } from '../../lab/salt-api-standin.js'

const TOKEN = 'startup-test-webhook-token-0123456789abcdef'
const server = join(repoRoot, 'dist', 'src', 'server.js')
const dir = await mkdtemp(join(tmpdir(), 'smq-start-'))
const api = await SaltApiStandIn.listening({ web01: ['10.0.0.5'] })
t.teardown(async () => {
  await api.close()
  await rm(dir, { recursive: true, force: true })
})

/** What a .env for this machine holds (JSON values quoted, as .env.example shows). */
function dotenv(port: number, state: string): string {
  return [
    `SALT_API_URL=${api.url}`, 'SALT_API_USER=saltmasq', `SALT_API_PASSWORD=${api.password}`,
    'SALT_API_EAUTH=sharedsecret', `WEBHOOK_TOKEN=${TOKEN}`, 'MANAGED_SUBNETS=10.0.0.0/16', 'DNSMASQ_MINION=dns',
    `PORT=${port}`, `DHCP_HOSTSFILE=${join(dir, 'hosts', 'dhcp-hosts')}`,
    `DHCP_HOSTSDIR=${join(dir, 'hosts', 'dhcp-hosts.d')}`, `DNS_HOSTSDIR=${join(dir, 'hosts', 'hosts.d')}`,
    `ADDN_HOSTS_FILE=${join(dir, 'hosts', 'addn-hosts')}`, `STATE_FILE=${state}`, 'DNSMASQ_APPLY_ARGS=\'["dnsmasq"]\'',
    'DNSMASQ_RELEASE_FUNCTION=', 'EVENT_STREAM=false', '',
  ].join('\n')
}

/** Runs the server until `until` says so (or it exits); returns its output and exit code. */
async function start(
  cwd: string,
  env: Record<string, string>,
  args: string[] = [],
  until?: (port: number) => Promise<boolean>,
  port = 0,
) {
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, [server, ...args], {
    cwd,
    env: { PATH: process.env.PATH!, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const output = captured(child)
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  let code: number | null = null
  if (until === undefined) {
    code = await exited
  } else {
    try {
      await waitFor('the server', async () => (child.exitCode !== null ? true : await until(port)), 30_000, 50)
    } finally {
      child.kill('SIGTERM')
      code = await exited
    }
  }
  return { stdout: output.stdout, stderr: output.stderr, code }
}

async function get(port: number, path: string): Promise<{ status: number, body: any }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })
    return { status: res.status, body: await res.json() }
  } catch {
    return { status: 0, body: null }
  }
}

t.test(
  'npm start reads ./.env (JSON values and all); the real environment wins; the first sync runs at start',
  async (t) => {
    const cwd = join(dir, 'app')
    await mkdir(cwd, { recursive: true })
    const filePort = await freePort()
    await writeFile(join(cwd, '.env'), dotenv(filePort, join(dir, 'state.json')))
    const realPort = await freePort()
    const reads = api.counts.mineGet
    let listed: any
    const out = await start(
      cwd,
      { PORT: String(realPort) },
      [],
      async (port) => {
        listed = (await get(port, '/reservations')).body
        return listed?.lastSync !== null && listed?.lastSync !== undefined
      },
      realPort,
    )
    t.equal(out.code, 0, 'SIGTERM: a clean exit')
    t.same(
      listed.reservations.map((r: { minionId: string }) => r.minionId),
      ['web01'],
      'reserved by the sync at start, no event needed',
    )
    t.ok(api.counts.mineGet > reads)
    const started = out.stdout.split('\n').find((l) => l.includes('started'))
    t.ok(started, 'one start-up line')
    t.match(JSON.parse(started!), {
      msg: /^saltmasq \d+\.\d+\.\d+ started$/,
      envFile: join(cwd, '.env'),
      format: 'hostsfile',
      saltApi: api.url,
      eventSources: ['webhook POST /hooks/salt'],
    })
    t.equal(out.stderr, '')
  },
)

t.test('SALTMASQ_ENV_FILE names the file; a named file that is missing stops start-up', async (t) => {
  const file = join(dir, 'saltmasq.env')
  await writeFile(file, dotenv(await freePort(), join(dir, 'state2.json')))
  let ok = false
  await start(
    dir,
    { SALTMASQ_ENV_FILE: file },
    [],
    async (port) => {
      ok = (await get(port, '/health')).status === 200
      return ok
    },
    Number(/PORT=(\d+)/.exec(await readFile(file, 'utf8'))![1]),
  )
  t.ok(ok, 'served /health')
  const missing = await start(dir, { SALTMASQ_ENV_FILE: join(dir, 'nope.env') })
  t.equal(missing.code, 1)
  t.match(missing.stderr, /^saltmasq cannot start: SALTMASQ_ENV_FILE=".*nope\.env" cannot be read: ENOENT/)
})

t.test(
  'every bad setting stops start-up with one line that names the variable, the value and what is allowed',
  async (t) => {
    const base = Object.fromEntries(
      dotenv(await freePort(), join(dir, 'state3.json'))
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => {
          const [k, ...v] = l.split('=')
          return [k!, v.join('=').replace(/^'(.*)'$/, '$1')]
        }),
    )
    await writeFile(join(dir, 'a-file'), 'not a directory')
    const cases: Array<[Record<string, string | undefined>, RegExp]> = [
      [
        { LOG_LEVEL: 'verbose' },
        /^LOG_LEVEL="verbose" is not allowed: one of fatal, error, warn, info, debug, trace, silent$/,
      ],
      [
        { RESERVATIONS_FORMAT: 'file' },
        /^RESERVATIONS_FORMAT="file" is not allowed: one of hostsdir, hostsfile, conf$/,
      ],
      [{ PORT: 'eighty' }, /^PORT="eighty" is not allowed: a whole number from 0 to 65535$/],
      [{ WEBHOOK_TOKEN: undefined }, /^WEBHOOK_TOKEN is required: at least 32 characters$/],
      [{ WEBHOOK_TOKEN: 'short' }, /^WEBHOOK_TOKEN=\(5 characters\) is not allowed: at least 32 characters$/],
      [{ SALT_API_CA_FILE: '/nope.pem' }, /^SALT_API_CA_FILE: cannot read "\/nope\.pem": ENOENT$/],
      [{ STATE_FILE: join(dir, 'a-file', 'state.json') }, /^STATE_FILE: cannot (read|write) .*a-file.*ENOTDIR/],
      [{ DNSMASQ_APPLY_ARGS: '[dnsmasq]' }, /^DNSMASQ_APPLY_ARGS: must be a JSON array of strings, got \[dnsmasq\]$/],
    ]
    for (const [change, line] of cases) {
      const env = { ...base, ...change } as Record<string, string>
      for (const [k, v] of Object.entries(change)) if (v === undefined) delete env[k]
      const out = await start(dir, env)
      t.equal(out.code, 1, JSON.stringify(change))
      const lines = out.stderr.trim().split('\n')
      t.equal(lines.length, 1, 'one line')
      t.match(lines[0]!.replace(/^saltmasq cannot start: /, ''), line)
      const log = out.stdout.trim().split('\n')
      t.equal(log.length, 1, 'and one JSON log line')
      t.ok(log[0]!.length < 1000, `a short one (${log[0]!.length} bytes): no stack`)
      t.notMatch(out.stdout + out.stderr, new RegExp(api.password), 'no secret')
    }
  },
)

t.test('SIGTERM while a new minion\'s mine.update waits on slow minions: says so, and exits at once', async (t) => {
  const cwd = join(dir, 'slow-update')
  await mkdir(cwd, { recursive: true })
  const port = await freePort()
  await writeFile(join(cwd, '.env'), dotenv(port, join(cwd, 'state.json')))
  api.keys = new Set(['web01', 'late01'])
  api.mineUpdateDelayMs = 20_000
  t.teardown(() => {
    api.keys = null
    api.mineUpdateDelayMs = 0
  })
  let stoppedAt = 0
  const out = await start(cwd, {}, [], async (p) => {
    const hook = await fetch(`http://127.0.0.1:${p}/hooks/salt`, {
      method: 'POST',
      headers: { 'authorization': `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tag: 'salt/cloud/late01/created', data: { name: 'late01' } }),
    }).catch(() => null)
    if (hook?.status !== 202 || api.counts.mineUpdate === 0) return false
    stoppedAt = Date.now()
    return true
  }, port)
  const tookMs = Date.now() - stoppedAt
  t.equal(out.code, 0, 'a clean exit')
  t.ok(tookMs < 5000, `SIGTERM to exit: ${tookMs} ms, not the 15 s grace nor mine.update's 20 s`)
  t.match(out.stdout, /new minions are not in the mine yet: asking them for mine\.update/, 'the wait is said')
  t.match(out.stdout, /"signal":"SIGTERM".*shutting down/, 'and the shutdown')
  t.notMatch(out.stdout, /killed by timeout/)
})

t.test('--help lists every variable with its default', async (t) => {
  const out = await start(dir, {}, ['--help'])
  t.equal(out.code, 0)
  t.match(out.stdout, /SALT_API_URL\s+required\s+a value matching \^https\?:\/\//)
  t.match(out.stdout, /RESERVATIONS_FORMAT\s+default "hostsfile"\s+one of hostsdir, hostsfile, conf/)
  t.match(out.stdout, /DESTROY_WHEN_KEY_GONE_S\s+default 900/)
})

t.test('a disk that fills up: the sync answers 500 naming the file and the cause, with a stable code', async (t) => {
  const small = join(dir, 'small')
  await mkdir(small, { recursive: true })
  await mustRun('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', small])
  t.teardown(async () => {
    await run('umount', [small])
  })
  const port = await freePort()
  const env = Object.fromEntries(
    dotenv(port, join(small, 'state.json'))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const [k, ...v] = l.split('=')
        return [k!, v.join('=').replace(/^'(.*)'$/, '$1')]
      }),
  )
  api.mine = Object.fromEntries(
    Array.from({ length: 2000 }, (_, i) => [`host${i}`, [`10.0.${i >> 8}.${(i & 255) + 1}`]]),
  )
  let answer: { status: number, body: any } | undefined
  await start(
    dir,
    env,
    [],
    async () => {
      const res = await fetch(`http://127.0.0.1:${port}/resync?wait=true`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
      }).catch(() => null)
      if (res === null) return false
      answer = { status: res.status, body: await res.json() }
      return true
    },
    port,
  )
  t.equal(answer?.status, 500)
  t.match(answer?.body, {
    code: 'SALTMASQ_FILE_WRITE_FAILED',
    message: new RegExp(`^cannot write ${join(small, 'state.json')}: ENOSPC`),
  })
  api.mine = { web01: ['10.0.0.5'] }
})
