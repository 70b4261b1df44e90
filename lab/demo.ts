// `npm run demo`: a whole local lab with nothing configured beforehand. A real Salt master,
// salt-api and minions, a real dnsmasq answering DNS on loopback, and saltmasq between them,
// hearing events on salt-api's stream and from the reactor.
// Fires a salt-cloud created event on the master bus and shows what came of it: the
// reservation, the files dnsmasq reads (the default format: the base files, and the new machine
// as one delta file picked up by inotify), and dnsmasq answering for the new name.
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pino } from 'pino'
import { Lab } from './lab.js'
import { waitFor } from './processes.js'

function say(line = ''): void {
  process.stdout.write(`${line}\n`)
}

let lab: Lab | undefined
try {
  say('saltmasq demo')
  say('- starting dnsmasq, a Salt master, salt-api and minions db01 and dns-host (takes ~20 s) ...')
  lab = await Lab.start({ minions: [{ id: 'db01', ips: ['10.77.0.12'] }] })
  const { dns } = lab
  say(`- dnsmasq (pid ${await dns.pid()}) answers DNS on 127.0.0.1:${dns.port}`)
  const app = await lab.startSaltmasq(
    // The default format: a new machine is a delta file dnsmasq reads by inotify, with no reload.
    lab.saltmasqEnv('hostsfile', { DNS_DOMAIN: 'lab', LOG_LEVEL: 'warn' }),
    pino({ level: 'warn' }, pino.destination({ dest: join(lab.dir, 'saltmasq.log'), sync: true })),
  )
  say(`- saltmasq listens on ${lab.url}; salt-api on ${lab.salt.apiUrl}`)

  say('- a new machine web01 boots; its minion reports 192.168.50.7 and 10.77.0.11 in the mine')
  await lab.salt.startMinion({ id: 'web01', ips: ['192.168.50.7', '10.77.0.11'] })
  await lab.salt.waitForMinions(['web01'])
  await lab.salt.refreshMine(['web01'])

  say('- salt-run event.send salt/cloud/web01/created  (what salt-cloud fires)')
  const fired = Date.now()
  await lab.salt.fireEvent('salt/cloud/web01/created', { name: 'web01', profile: 'demo', event: 'created instance' })
  const addresses = await waitFor('web01.lab to resolve', async () => {
    const found = await dns.resolve('web01.lab')
    return found.length > 0 ? found : undefined
  }, 60_000, 20)
  say(`  saltmasq heard it, synced and wrote web01's files, dnsmasq read them by inotify (no reload): ${Date.now() - fired} ms`)
  await waitFor('the reactor\'s post too', () => app.saltmasq.intake.counts.webhook.accepted > 0, 10_000, 20).catch(() => undefined)
  await app.saltmasq.scheduler.idle()
  const { stream: viaStream, webhook: viaWebhook } = app.saltmasq.intake.counts
  say(`  heard through salt-api's event stream: ${viaStream.accepted}; through the reactor's webhook: ${viaWebhook.accepted} (hints both: one key-list read and one sync took web01 in)`)
  say()
  const listed = await app.inject({ method: 'GET', url: '/reservations', headers: lab.auth })
  say('GET /reservations:')
  for (const r of listed.json().reservations as Array<{ minionId: string, ip: string, firstSeen: string }>) {
    say(`  ${r.minionId.padEnd(10)} ${r.ip.padEnd(15)} since ${r.firstSeen}`)
  }
  say()
  const body = (text: string): string[] => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'))
  for (const [file, option] of [[dns.dhcpHostsFile, 'dhcp-hostsfile'], [dns.addnHostsFile, 'addn-hosts']] as const) {
    say(`${file} (${option}), the base: ${body(await readFile(file, 'utf8')).join(' | ') || '(empty)'}`)
  }
  for (const [dir, option] of [[dns.dhcpHostsDir, 'dhcp-hostsdir'], [dns.dnsHostsDir, 'hostsdir']] as const) {
    for (const name of (await readdir(dir)).sort()) {
      say(`${join(dir, name)} (${option}), a delta: ${body(await readFile(join(dir, name), 'utf8')).join(' | ')}`)
    }
  }
  say()
  say(`dnsmasq answers: web01.lab → ${addresses.join(', ')}; db01.lab → ${(await dns.resolve('db01.lab')).join(', ')}`)
  say('(web01 got 10.77.0.11, its address in MANAGED_SUBNETS, not the first address in its list.)')
} finally {
  say('- tearing the lab down')
  await lab?.stop()
}
