// `npm run demo`: a whole local lab with nothing configured beforehand. A real Salt master,
// salt-api and three minions, a real dnsmasq answering DNS on loopback, and saltmasq between
// them. Fires a salt-cloud created event on the master bus and shows what came of it: the
// reservation, the files dnsmasq reads (one per reservation, picked up by inotify), and dnsmasq
// answering for the new name.
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { buildApp, type SaltmasqApp } from '../../src/app.js'
import { LoopbackDnsmasq } from './loopback-dnsmasq.js'
import { freePort, waitFor } from './processes.js'
import { SaltLab } from './salt-lab.js'

function say (line = ''): void {
  process.stdout.write(`${line}\n`)
}

const token = randomBytes(24).toString('hex')
const tmp = await mkdtemp(join(tmpdir(), 'smq-demo-'))
let dns: LoopbackDnsmasq | undefined
let lab: SaltLab | undefined
let app: SaltmasqApp | undefined

try {
  say('saltmasq demo')
  dns = await LoopbackDnsmasq.start(join(tmp, 'dns'))
  say(`- dnsmasq (pid ${await dns.pid()}) answers DNS on 127.0.0.1:${dns.port}`)
  const port = await freePort()
  say('- starting a Salt master, salt-api and minions db01 and dns-host (takes ~20 s) ...')
  lab = await SaltLab.start({
    minions: [
      { id: 'db01', ips: ['10.77.0.12'] },
      { id: 'dns-host', ips: ['127.0.0.1'] },
    ],
    webhookUrl: `http://127.0.0.1:${port}/hooks/salt`,
    webhookToken: token,
    extraPermissions: ["      - 'dns-host':", '        - cmd.run_all:', '            args:', `              - ${dns.reloadScript}`].join('\n'),
  })
  app = await buildApp({
    env: {
      ...lab.saltApiEnv,
      WEBHOOK_TOKEN: token,
      MANAGED_SUBNETS: '10.77.0.0/16',
      // A small fleet: the format where a new machine needs no reload at all.
      RESERVATIONS_FORMAT: 'hostsdir',
      DHCP_HOSTSDIR: dns.dhcpHostsDir,
      DNS_HOSTSDIR: dns.dnsHostsDir,
      DNS_DOMAIN: 'lab',
      STATE_FILE: join(tmp, 'state.json'),
      DNSMASQ_MINION: 'dns-host',
      DNSMASQ_APPLY_FUNCTION: 'cmd.run_all',
      DNSMASQ_APPLY_ARGS: JSON.stringify([dns.reloadScript]),
      LOG_LEVEL: 'warn',
    },
    logger: pino({ level: 'warn' }, pino.destination({ dest: join(tmp, 'saltmasq.log'), sync: true })),
  })
  await app.listen({ host: '127.0.0.1', port })
  say(`- saltmasq listens on http://127.0.0.1:${port}; salt-api on ${lab.apiUrl}`)

  say('- a new machine web01 boots; its minion reports 192.168.50.7 and 10.77.0.11 in the mine')
  await lab.startMinion({ id: 'web01', ips: ['192.168.50.7', '10.77.0.11'] })
  await lab.waitForMinions(['web01'])
  await lab.refreshMine(['web01'])

  say('- salt-run event.send salt/cloud/web01/created  (what salt-cloud fires)')
  const fired = Date.now()
  await lab.fireEvent('salt/cloud/web01/created', { name: 'web01', profile: 'demo', event: 'created instance' })
  const addresses = await waitFor('web01.lab to resolve', async () => {
    const found = await dns!.resolve('web01.lab')
    return found.length > 0 ? found : undefined
  }, 60_000, 20)
  say(`  the reactor posted it, saltmasq synced and wrote web01's files, dnsmasq read them by inotify (no reload): ${Date.now() - fired} ms`)
  say()
  const listed = await app.inject({ method: 'GET', url: '/reservations', headers: { authorization: `Bearer ${token}` } })
  say('GET /reservations:')
  for (const r of listed.json().reservations as Array<{ minionId: string, ip: string, firstSeen: string }>) {
    say(`  ${r.minionId.padEnd(10)} ${r.ip.padEnd(15)} since ${r.firstSeen}`)
  }
  say()
  for (const [dir, option] of [[dns.dhcpHostsDir, 'dhcp-hostsdir'], [dns.dnsHostsDir, 'hostsdir']] as const) {
    say(`${dir} (${option}), one file per reservation:`)
    for (const name of (await readdir(dir)).sort()) say(`  ${name}: ${(await readFile(join(dir, name), 'utf8')).split('\n')[1]}`)
  }
  say()
  say(`dnsmasq answers: web01.lab → ${addresses.join(', ')}; db01.lab → ${(await dns.resolve('db01.lab')).join(', ')}`)
  say('(web01 got 10.77.0.11, its address in MANAGED_SUBNETS, not the first address in its list.)')
} finally {
  say('- tearing the lab down')
  await app?.close()
  await lab?.stop()
  await dns?.stop()
  await rm(tmp, { recursive: true, force: true })
}
