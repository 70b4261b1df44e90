// B5: what each RESERVATIONS_FORMAT costs dnsmasq at scale. For every fleet size and format,
// b5-worker.ts runs inside a fresh network namespace with a real dnsmasq (DHCP + DNS) holding
// N reservations, and measures: how soon a new reservation is live after saltmasq starts
// writing it, and the longest time dnsmasq stops answering while a burst of additions, then a
// batch of deletions, is published.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FormatName } from '../src/config/index.js'
import { repoRoot } from '../lab/paths.js'
import { NetLab } from '../lab/netns.js'
import type { WorkerArgs, WorkerResult } from './b5-worker.js'

export type FormatRow = WorkerResult

/** The formats as B5 runs them: hostsfile twice, applying every change by SIGHUP and with delta files. */
export const B5_FORMATS: ReadonlyArray<{ format: FormatName, deltas?: boolean }> = [
  { format: 'hostsdir' },
  { format: 'hostsfile' },
  { format: 'hostsfile', deltas: true },
  { format: 'conf' },
]

/** A B5 row's name: the format, `+deltas` for hostsfile with delta files. */
export function b5Name(f: { format: FormatName, deltas?: boolean }): string {
  return `${f.format}${f.deltas === true ? '+deltas' : ''}`
}

/** `only`: the rows to run, by b5Name; all when absent. */
export async function benchFormats(
  sizes: readonly number[],
  samples: number,
  burst: number,
  onRow: (row: FormatRow) => void = () => undefined,
  only?: ReadonlySet<string>,
): Promise<FormatRow[]> {
  const rows: FormatRow[] = []
  for (const n of sizes) {
    for (const { format, deltas } of B5_FORMATS.filter((f) => only === undefined || only.has(b5Name(f)))) {
      const dir = await mkdtemp(join(tmpdir(), `smq-b5-${format}${deltas === true ? '-deltas' : ''}-${n}-`))
      const net = await NetLab.create(dir)
      try {
        const args: WorkerArgs = {
          format,
          ...(deltas === undefined ? {} : { deltas }),
          n,
          dir,
          ns: net.master.name,
          samples,
          burst,
        }
        const out = await net.master.mustRun(
          process.execPath,
          [join(repoRoot, 'dist', 'bench', 'b5-worker.js'), JSON.stringify(args)],
          { timeoutMs: 1_800_000 },
        )
        const row = JSON.parse(out.trim().split('\n').at(-1)!) as FormatRow
        rows.push(row)
        onRow(row)
      } finally {
        await net.destroy()
        if (process.env.SALTMASQ_KEEP_LAB === undefined) await rm(dir, { recursive: true, force: true })
      }
    }
  }
  return rows
}
