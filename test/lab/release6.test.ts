// Destroy is complete for IPv6 too: the saltmasq execution module's release_lease (what saltmasq
// calls on the dnsmasq minion through salt-api after a destroy) frees a DHCPv6 lease with
// dhcp_release6, against a real dnsmasq serving DHCPv6 in a network namespace and a real DHCPv6
// client (ISC dhclient -6) in another. The IPv4 path of the same function is the DHCP lab's.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { NetLab } from '../../lab/netns.js'
import { repoRoot, saltFiles, venvBin } from '../../lab/paths.js'
import { killOnExit, livePid, stopPid, waitFor } from '../../lab/processes.js'

const tmp = await mkdtemp(join(tmpdir(), 'smq-v6-'))
const net = await NetLab.create(tmp)
const files = { conf: join(tmp, 'dnsmasq.conf'), leases: join(tmp, 'dnsmasq.leases'), pid: join(tmp, 'dnsmasq.pid'), log: join(tmp, 'dnsmasq.log') }
const client = { leases: join(tmp, 'dhclient6.leases'), pid: join(tmp, 'dhclient6.pid') }
t.teardown(async () => {
  for (const pidFile of [files.pid, client.pid]) {
    const pid = await livePid(pidFile)
    if (pid !== undefined) await stopPid(pid, 5000)
  }
  await net.destroy()
  await rm(tmp, { recursive: true, force: true })
})

await net.master.mustRun('ip', ['-6', 'addr', 'add', 'fd99::1/64', 'dev', 'br0', 'nodad'])
const host = await net.addMachine('v6host')
// DHCPv6 is sent from the link-local address: wait until it is no longer tentative.
await waitFor('a link-local address on the client', async () => {
  const out = await host.mustRun('ip', ['-6', 'addr', 'show', 'dev', 'eth0'])
  return out.includes('scope link') && !out.includes('tentative')
}, 20_000, 100)
await writeFile(files.conf, [
  'port=0', 'interface=br0', 'bind-interfaces', 'user=root', 'log-dhcp',
  'dhcp-range=fd99::100,fd99::1ff,64,1h',
  `dhcp-leasefile=${files.leases}`, `pid-file=${files.pid}`, `log-facility=${files.log}`, '',
].join('\n'))
killOnExit(files.pid)
await net.master.mustRun('dnsmasq', [`--conf-file=${files.conf}`])
await waitFor('dnsmasq running', async () => await livePid(files.pid), 10_000, 50)

async function leaseFileV6(): Promise<string[]> {
  const text = await readFile(files.leases, 'utf8').catch(() => '')
  const lines = text.split('\n').filter((l) => l !== '')
  return lines.slice(lines.findIndex((l) => l.startsWith('duid ')) + 1)
}

t.test('a DHCPv6 lease is released at once with dhcp_release6', async (t) => {
  // -sf /bin/true: take the lease, leave the interface alone.
  await host.mustRun('dhclient', ['-6', '-1', '-lf', client.leases, '-pf', client.pid, '-sf', '/bin/true', 'eth0'], { timeoutMs: 60_000 })
  killOnExit(client.pid)
  const leased = await waitFor('the lease in dnsmasq\'s lease file', async () => (await leaseFileV6())[0], 20_000, 50)
  const [, iaid, ip] = leased.split(' ')
  t.match(ip, /^fd99::1[0-9a-f]{2}$/, `leased ${ip} (IAID ${iaid})`)

  // Loaded by Salt's own loader, as on a minion (test/helpers/salt_module.py).
  const call = [
    join(repoRoot, 'test', 'helpers', 'salt_module.py'),
    join(saltFiles, 'states', '_modules'),
    JSON.stringify({ 'saltmasq:dnsmasq:leasefile': files.leases }),
    `saltmasq.release_lease(${JSON.stringify(ip)}, 'br0')`,
  ]
  const result = JSON.parse(await net.master.mustRun(join(venvBin, 'python3'), call)) as { released: string[], comment: string }
  t.equal(result.released?.length, 1, `one lease released: ${JSON.stringify(result)}`)
  await waitFor('the lease gone from dnsmasq', async () => (await leaseFileV6()).length === 0, 10_000, 50)
  t.match(await readFile(files.log, 'utf8'), /DHCPRELEASE\(br0\)/, 'dnsmasq took a DHCPv6 release')

  const again = JSON.parse(await net.master.mustRun(join(venvBin, 'python3'), call)) as { released: string[] }
  t.same(again, { released: [], comment: `released 0 lease(s) of ${ip}` }, 'no lease left: not an error')
})
