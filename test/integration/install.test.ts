// The README's "Installing on a real master", run as written: its two shell blocks install the
// Salt side (module, states, pillar with mine_functions, reactor, api.conf with a pam user and a
// self-signed certificate, Salt in a virtualenv) on a master configured by nothing else, in a
// network namespace; minions carry no mine configuration of their own; dnsmasq runs without a
// service manager (reload by pid file). Then saltmasq, started from the environment file the
// steps wrote, must get ready and reserve, publish, apply and release through exactly the
// grants installed.
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { parseEnv } from 'node:util'
import t from 'tap'
import { DhcpDnsmasq } from '../../lab/dhcp-dnsmasq.js'
import { LAB_SUBNET, MASTER_IP, NetLab } from '../../lab/netns.js'
import { repoRoot, venvBin } from '../../lab/paths.js'
import { mustRun, run, waitFor } from '../../lab/processes.js'
import { SaltLab } from '../../lab/salt-lab.js'
import { SaltmasqProcess } from '../../lab/saltmasq-process.js'

/** The shell block after `<!-- install:<name> -->` in the README. */
async function readmeBlock(name: string): Promise<string> {
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8')
  const m = new RegExp(`<!-- install:${name} -->\\n\`\`\`sh\\n([\\s\\S]*?)\`\`\``).exec(readme)
  if (m === null) throw new Error(`no install:${name} block in the README`)
  return m[1]!
}

const tmp = await mkdtemp(join(tmpdir(), 'smq-install-'))
const srv = join(tmp, 'srv')
const saltmasqEtc = join(tmp, 'etc-saltmasq')
const apiUser = `smq${randomBytes(3).toString('hex')}`
let net: NetLab | undefined
let salt: SaltLab | undefined
let dns: DhcpDnsmasq | undefined
let svc: SaltmasqProcess | undefined
t.teardown(async () => {
  await svc?.stop()
  await salt?.stop()
  await dns?.stop()
  await net?.destroy()
  await run('userdel', [apiUser])
  if (process.env.SALTMASQ_KEEP_LAB === undefined) await rm(tmp, { recursive: true, force: true })
})

net = await NetLab.create(tmp)
const web = await net.addMachine('web01')
const app = await net.addMachine('app01')
dns = new DhcpDnsmasq(net.master, join(tmp, 'dnsmasq'))
await dns.writeConfig({ first: '10.99.0.100', last: '10.99.0.109' }, 'lab')
const lease = dns.leaseFile
const installEnv = {
  ...process.env,
  SRV: srv,
  SALTMASQ_ETC: saltmasqEtc,
  DNSMASQ_MINION: 'dns01',
  SALT_API_USER: apiUser,
  SALT_VENV: dirname(venvBin),
  MANAGED_SUBNETS: LAB_SUBNET,
}

/** Runs a README block from the checkout, as the README says, with `env`. */
async function runBlock(name: string, env: NodeJS.ProcessEnv): Promise<string> {
  const script = join(tmp, `install-${name}.sh`)
  await writeFile(script, `set -euo pipefail\ncd ${JSON.stringify(repoRoot)}\n${await readmeBlock(name)}`)
  return await mustRun('bash', [script], { env, timeoutMs: 300_000 })
}

salt = await SaltLab.start({
  masterNetns: net.master,
  masterAddress: MASTER_IP,
  minions: [],
  webhookUrl: 'http://127.0.0.1:8080/hooks/salt',
  webhookToken: '',
  installed: {
    srv,
    apiUrl: 'https://127.0.0.1:8000',
    install: async (confDir) => {
      await runBlock('files', { ...installEnv, SALT_ETC: confDir })
      // "Then check $SRV/pillar/saltmasq.sls": this dnsmasq is the lab's, run without a service manager.
      const pillar = join(srv, 'pillar', 'saltmasq.sls')
      await writeFile(
        pillar,
        (await readFile(pillar, 'utf8'))
          .replace(/^( {4}hosts_dir:).*$/m, `$1 ${dns!.hostsDir}`)
          .replace(/^( {4}conf_dir:).*$/m, `$1 ${dns!.confDir}`)
          .replace(/^( {4}manage_service:).*$/m, '$1 False')
          .replace(/^( {4}pidfile:).*$/m, `$1 ${dns!.pidFile}`)
          .replace(/^( {4}leasefile:).*$/m, `$1 ${lease}`),
      )
    },
  },
})
const envFile = join(saltmasqEtc, 'saltmasq.env')
const fileEnv = parseEnv(await readFile(envFile, 'utf8')) as Record<string, string | undefined>

t.test('the install steps wrote what they say, with the secrets root-only', async (t) => {
  const mode = async (path: string) => (await stat(path)).mode & 0o777
  t.equal(await mode(envFile), 0o600, 'saltmasq.env is 0600')
  t.equal(await mode(join(salt!.masterConf, 'saltmasq-webhook.headers')), 0o600, 'the header file is 0600')
  t.match(fileEnv, {
    SALT_API_USER: apiUser,
    SALT_API_EAUTH: 'pam',
    DNSMASQ_MINION: 'dns01',
    MANAGED_SUBNETS: LAB_SUBNET,
  })
  t.match(fileEnv.SALT_API_CA_FILE, /pki\/api\/salt-api\.crt$/)
  t.equal(fileEnv.WEBHOOK_TOKEN?.length, 48)
  const api = await readFile(join(salt!.masterConf, 'master.d', 'api.conf'), 'utf8')
  t.match(api, new RegExp(`^ {4}${apiUser}:$`, 'm'), 'the eauth user')
  t.match(api, /^ {6}- 'dns01':$/m, 'the grants target the dnsmasq minion')
  t.match(
    await readFile(join(salt!.masterConf, 'master.d', 'saltmasq-pam.conf'), 'utf8'),
    /^auth\.pam\.python: .*\/saltmasq-pam-python$/m,
    'pam runs Salt\'s own Python, through a wrapper',
  )
})

t.test('the apply block: pillar, mine and the dnsmasq state, on minions with no mine configuration', async (t) => {
  // dnsmasq starts once its state is applied: web01 was here before, at an address of its own.
  const webIp = '10.99.0.20'
  await web.setAddress(webIp)
  await salt!.startMinion({ id: 'dns01', netns: net!.master, mineFromPillar: true })
  await salt!.startMinion({ id: 'web01', netns: web, mineFromPillar: true })
  await salt!.waitForMinions(['dns01', 'web01'])
  // `systemctl` and `salt` as the README runs them, on the lab's master in its namespace.
  const shims = join(tmp, 'shims')
  await mkdir(shims, { recursive: true })
  await writeFile(
    join(shims, 'systemctl'),
    '#!/bin/sh\n# the lab started salt-master and salt-api on the installed configuration\nexit 0\n',
  )
  await writeFile(
    join(shims, 'salt'),
    `#!/bin/sh\nexec ip netns exec ${net!.master.name} ${join(venvBin, 'salt')} -c ${salt!.masterConf} --out=json --static "$@"\n`,
  )
  await chmod(join(shims, 'systemctl'), 0o755)
  await chmod(join(shims, 'salt'), 0o755)
  const out = await runBlock('apply', {
    ...process.env,
    PATH: `${shims}:${process.env.PATH ?? ''}`,
    DNSMASQ_MINION: 'dns01',
  })
  t.notMatch(out, /"result": false/, 'every state of saltmasq.dnsmasq succeeded')
  await waitFor(
    'web01 in the mine (from pillar mine_functions)',
    async () => 'web01' in (await salt!.mine()),
    60_000,
    500,
  )
  t.same((await salt!.mine()).web01, [webIp])
  t.match(
    await readFile(join(dns!.confDir, 'saltmasq.conf'), 'utf8'),
    new RegExp(`^dhcp-hostsfile=${dns!.dhcpHostsFile}$`, 'm'),
    'dnsmasq pointed at saltmasq\'s files',
  )
  await dns!.start()
})

t.test(
  'saltmasq from the environment file: ready, reserves, applies and releases with only the installed grants',
  async (t) => {
    svc = await SaltmasqProcess.start(
      {
        SALTMASQ_ENV_FILE: envFile,
        WEBHOOK_TOKEN: fileEnv.WEBHOOK_TOKEN!, // the process gets it from the file; the test's requests need it too
        PORT: '8080', // where the installed reactor posts
        STATE_FILE: join(tmp, 'state.json'),
        DHCP_HOSTSFILE: dns!.dhcpHostsFile,
        ADDN_HOSTS_FILE: dns!.addnHostsFile,
        DHCP_HOSTSDIR: dns!.dhcpHostsDir,
        DNS_HOSTSDIR: dns!.dnsHostsDir,
        DNS_DOMAIN: 'lab',
        DNSMASQ_RELEASE_ARGS: '["interface=br0"]',
      },
      join(tmp, 'saltmasq.log'),
      net!.master,
    )
    await waitFor('/ready', async () => (await svc!.request('GET', '/ready')).status === 200, 90_000, 250).catch(
      async (err) => {
        t.comment(JSON.stringify((await svc!.request('GET', '/ready')).body))
        t.comment((await readFile(join(tmp, 'saltmasq.log'), 'utf8')).split('\n').slice(-15).join('\n'))
        throw err
      },
    )
    t.pass(
      'ready: a pam login through the venv\'s Python, over TLS with the installed certificate, a sync and the stream',
    )
    const first = (await svc!.request('GET', '/reservations')).body
    const webIp = (await salt!.mine()).web01 as string[]
    t.ok(
      first.reservations.some((r: { minionId: string, ip: string }) => r.minionId === 'web01' && r.ip === webIp[0]),
      'web01 reserved at its address',
    )
    t.equal(first.lastSync.keyListProblem, null, 'the wheel grant reads the key list')
    await waitFor(
      'dnsmasq answering for web01.lab',
      async () => (await web.resolve('web01.lab')).includes(webIp[0]!),
      30_000,
      200,
    )

    // A new machine, its created event on the bus: the stream and the installed reactor both carry it.
    const appIp = await app.dhcp()
    await salt!.startMinion({ id: 'app01', netns: app, mineFromPillar: true })
    await salt!.waitForMinions(['app01'])
    await salt!.load.fireCloudEvents('created', 1, 'app01')
    await waitFor(
      'app01.lab answered (saltmasq.reload by pid file, through salt-api)',
      async () => (await web.resolve('app01.lab')).includes(appIp),
      90_000,
      200,
    )
    await waitFor(
      'the reactor\'s webhook arrived too',
      async () => (await svc!.request('GET', '/reservations')).body.events.webhook.accepted >= 1,
      60_000,
      200,
    )

    // The name may answer through app01's lease before its sync is done: wait for the reservation.
    await waitFor(
      'app01 reserved',
      async () => (await svc!.request('GET', '/reservations')).body.reservations.some((r: { minionId: string }) => r.minionId === 'app01'),
      60_000,
      200,
    )
    const removed = await svc!.request('DELETE', '/reservations/app01?wait=true')
    t.equal(removed.status, 200)
    t.same(removed.body.released, [appIp], 'saltmasq.release_lease freed its lease')
    t.same(removed.body.releaseFailures, [])
    const log = await readFile(join(tmp, 'saltmasq.log'), 'utf8')
    t.notMatch(log, /SALTMASQ_SALT_FORBIDDEN|SALTMASQ_APPLY_FAILED/, 'no call was refused')
    t.notOk(log.includes(fileEnv.SALT_API_PASSWORD!) || log.includes(fileEnv.WEBHOOK_TOKEN!), 'no secret in the log')
    t.notMatch(await readFile(salt!.masterLog, 'utf8'), /No module named 'salt'/, 'pam found Salt')
  },
)

t.test(
  'saltmasq.service renders on the real master: a root-only env file and a hardened unit systemd accepts',
  async (t) => {
    const pillar = {
      saltmasq: {
        service: {
          source: 'salt://saltmasq-0.1.0.tgz',
          env: {
            ...fileEnv,
            STATE_FILE: '/var/lib/saltmasq/state.json',
            DHCP_HOSTSFILE: '/srv/dnsmasq/dhcp-hosts',
            ADDN_HOSTS_FILE: '/srv/dnsmasq/addn-hosts',
            DHCP_HOSTSDIR: '/srv/dnsmasq/dhcp-hosts.d',
            DNS_HOSTSDIR: '/srv/dnsmasq/hosts.d',
          },
        },
      },
    }
    const shown = (await salt!.salt([
      'dns01', 'state.show_sls', 'saltmasq.service', `pillar=${JSON.stringify(pillar)}`,
    ])) as Record<string, Record<string, Record<string, unknown>>>
    const states = shown.dns01!
    t.ok(typeof states === 'object' && !Array.isArray(states), `rendered: ${JSON.stringify(states).slice(0, 300)}`)
    const args = (id: string, fun: string): Record<string, unknown> =>
      Object.assign({}, ...(states[id]![fun.split('.')[0]!] as unknown[]).filter((a) => typeof a === 'object'))
    const envFile = args('saltmasq-env-file', 'file.managed')
    t.match(
      envFile,
      { mode: '0600', user: 'root', show_changes: false },
      'the env file is root-only and its diff never shown',
    )
    t.match(envFile.contents, new RegExp(`^SALT_API_USER=${apiUser}$`, 'm'))
    t.same(
      Object.keys(states)
        .filter((id) => id.startsWith('saltmasq-dir-'))
        .map((id) => args(id, 'file.directory').name)
        .sort(),
      ['/srv/dnsmasq', '/srv/dnsmasq/dhcp-hosts.d', '/srv/dnsmasq/hosts.d', '/var/lib/saltmasq'],
      'exactly the directories of its files (the base files, the delta files, the state)',
    )
    const unit = args('saltmasq-unit', 'file.managed').contents as string
    t.match(
      unit,
      /^ReadWritePaths=\/srv\/dnsmasq \/srv\/dnsmasq\/dhcp-hosts\.d \/srv\/dnsmasq\/hosts\.d \/var\/lib\/saltmasq$/m,
      'ReadWritePaths: those directories, nothing else',
    )
    t.match(unit, /^ProtectSystem=strict$/m)
    t.match(unit, /^User=saltmasq$/m)
    t.match(unit, /^EnvironmentFile=\/etc\/saltmasq\/saltmasq\.env$/m)
    t.match(unit, /^Restart=on-failure$/m)
    // systemd's own check of the unit (no systemd runs here: verify reads the file alone).
    const unitFile = join(tmp, 'saltmasq.service')
    await writeFile(unitFile, unit)
    const verify = await run('systemd-analyze', ['verify', unitFile])
    t.equal(verify.code, 0, `systemd-analyze verify: ${verify.stderr.trim() || 'clean'}`)
    t.notMatch(verify.stderr, /saltmasq\.service:\d+: /, 'no complaint about any line of the unit')
  },
)
