// The seed write-up's own path, run in the same kind of lab for comparison: its reactor runs
// `cmd.script` with its create_reservations.py on the dnsmasq minion, which reads the mine
// through a Caller, rewrites the reservations and restarts dnsmasq, on every event.
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { LoopbackDnsmasq } from '../test/harness/loopback-dnsmasq.js'
import { repoRoot, venvBin } from '../test/harness/paths.js'
import { SaltLab, type LabMinion } from '../test/harness/salt-lab.js'

export async function startSeedLab (tmp: string, dns: LoopbackDnsmasq, minions: LabMinion[]): Promise<SaltLab> {
  const roots = join(tmp, 'seed-roots')
  await mkdir(join(roots, 'lab'), { recursive: true })
  const reactorSls = join(tmp, 'update_dnsmasq_reservations.sls')
  await writeFile(reactorSls, await readFile(join(repoRoot, 'bench', 'seed', 'update_dnsmasq_reservations.sls'), 'utf8'))
  let lab: SaltLab | undefined
  const template = await readFile(join(repoRoot, 'bench', 'seed', 'create_reservations.py'), 'utf8')
  lab = await SaltLab.start({
    minions,
    webhookUrl: 'http://127.0.0.1:9/unused',
    webhookToken: 'unused-by-the-seed-path-0123456789abcdef',
    reactorMap: ['reactor:', "  - 'salt/cloud/*/created':", `    - ${reactorSls}`, ''].join('\n'),
    fileRoots: [roots],
  })
  await writeFile(join(roots, 'lab', 'create_reservations.py'), template
    .replace('{{PYTHON}}', join(venvBin, 'python3'))
    .replace('{{MINION_CONFIG}}', lab.minionConfig('dns-host'))
    .replace('{{RESERVATIONS}}', dns.reservationsConf)
    .replace('{{RESTART}}', dns.restartScript))
  return lab
}
