// The seed write-up's own path, run in the same kind of lab for comparison: its reactor runs
// `cmd.script` with its create_reservations.py on the dnsmasq minion, which reads the mine
// through a Caller, rewrites the reservations and restarts dnsmasq, on every event.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Lab } from '../lab/lab.js'
import { repoRoot, venvBin } from '../lab/paths.js'
import { removeOnExit } from '../lab/processes.js'
import type { LabMinion } from '../lab/salt-lab.js'

/** A lab whose reactor is the seed's, not saltmasq's; its files go when the lab stops. */
export async function startSeedLab(minions: LabMinion[], dnsMinionConfig: string[] = []): Promise<Lab> {
  const seed = await mkdtemp(join(tmpdir(), 'smq-seed-'))
  const forget = removeOnExit(seed)
  const roots = join(seed, 'roots')
  await mkdir(join(roots, 'lab'), { recursive: true })
  const reactorSls = join(seed, 'update_dnsmasq_reservations.sls')
  await writeFile(reactorSls, await readFile(join(repoRoot, 'bench', 'seed', 'update_dnsmasq_reservations.sls'), 'utf8'))
  const template = await readFile(join(repoRoot, 'bench', 'seed', 'create_reservations.py'), 'utf8')
  const lab = await Lab.start({
    minions,
    dnsMinionConfig,
    reactorMap: ['reactor:', '  - \'salt/cloud/*/created\':', `    - ${reactorSls}`, ''].join('\n'),
    fileRoots: [roots],
    onStop: async () => {
      await rm(seed, { recursive: true, force: true })
      forget()
    },
  })
  await writeFile(join(roots, 'lab', 'create_reservations.py'), template
    .replace('{{PYTHON}}', join(venvBin, 'python3'))
    .replace('{{MINION_CONFIG}}', lab.salt.minionConfig('dns-host'))
    .replace('{{RESERVATIONS}}', lab.dns.reservationsConf)
    .replace('{{RESTART}}', lab.dns.restartScript))
  return lab
}
