// B5 for DNSMASQ_PUBLISH=salt: what publishing through Salt costs at scale, against the real
// master, salt-api and the dns-host minion (the project's saltmasq.publish writing the loopback
// dnsmasq's files and sending it SIGHUP). Per fleet size: the full catch-up of a minion that
// holds nothing (the files whole), then single additions and a deletion as deltas, in bytes of
// saltmasq.publish arguments and in time until the call returned; and the local publisher's
// single addition (write + apply through salt-api) in the same lab, for the ratio.
import { join } from 'node:path'
import { pino } from 'pino'
import { loadConfig } from '../src/config/index.js'
import { openPublisher } from '../src/dnsmasq/open-publisher.js'
import type { Reservation } from '../src/ledger/reservation.js'
import { Lab } from '../lab/lab.js'
import { SaltClient } from '../src/salt/client.js'
import { systemClock } from '../src/util/clock.js'
import { median, round } from './stats.js'

export interface SaltPublishRow {
  n: number
  /** The files whole to a minion that holds nothing. */
  catchUpBytes: number
  catchUpMs: number
  /** One reservation added (median over the samples). */
  additionBytes: number
  additionMs: number
  /** One reservation removed. */
  deletionBytes: number
  deletionMs: number
  /** The same addition published locally (HOSTSFILE_DELTAS=false): files written here, apply through salt-api. */
  localAdditionMs: number
}

function fleet(n: number): Reservation[] {
  const at = '2026-11-26T00:00:00.000Z'
  return Array.from({ length: n }, (_, k) => ({
    minionId: `node${String(k).padStart(6, '0')}.rack${k % 40}.example.com`,
    ip: `10.77.${(k + 256) >> 8}.${(k + 256) & 255}`,
    firstSeen: at,
    lastSeen: at,
  }))
}

function timed<T>(run: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now()
  return run().then((out) => [out, performance.now() - t0])
}

export async function benchSaltPublish(
  sizes: readonly number[],
  samples: number,
  onRow: (row: SaltPublishRow) => void = () => undefined,
): Promise<SaltPublishRow[]> {
  const lab = await Lab.start({ minions: [] })
  const logger = pino({ level: 'silent' })
  const rows: SaltPublishRow[] = []
  try {
    await lab.syncModules()
    for (const n of sizes) {
      // Like for like: the local publisher rewrites the file and has dnsmasq reloaded through
      // salt-api, as saltmasq.publish does on the minion (its delta files are B5's own row).
      const env = (publish: 'salt' | 'local') =>
        lab.saltmasqEnv('hostsfile', {
          DNSMASQ_PUBLISH: publish,
          STATE_FILE: join(lab.dir, `b5-${publish}-${n}.json`),
          SALT_API_TIMEOUT_MS: '120000',
          HOSTSFILE_DELTAS: 'false',
        })
      const config = loadConfig(env('salt'))
      const client = new SaltClient({ ...config.salt, logger })
      const salt = await openPublisher({ config, client, logger, clock: systemClock })
      const current = fleet(n)
      // The minion holds files of another fleet: the first call sends everything whole.
      const [caughtUp, catchUpMs] = await timed(async () => await salt.publish(current))

      const additions: Array<{ bytes: number, ms: number }> = []
      for (let i = 0; i < samples; i++) {
        current.push({
          minionId: `zz-sample${i}`,
          ip: `10.77.250.${i + 1}`,
          firstSeen: current[0]!.firstSeen,
          lastSeen: current[0]!.lastSeen,
        })
        const [r, ms] = await timed(async () => await salt.publish(current))
        if (!r.applied) throw new Error('an addition through Salt was not applied')
        additions.push({ bytes: r.bytesSent, ms })
      }
      current.splice(n / 2, 1)
      const [deleted, deletionMs] = await timed(async () => await salt.publish(current))

      const localConfig = loadConfig(env('local'))
      const local = await openPublisher({ config: localConfig, client, logger, clock: systemClock })
      await local.publish(current)
      const localMs: number[] = []
      for (let i = 0; i < samples; i++) {
        current.push({
          minionId: `zz-local${i}`,
          ip: `10.77.251.${i + 1}`,
          firstSeen: current[0]!.firstSeen,
          lastSeen: current[0]!.lastSeen,
        })
        localMs.push((await timed(async () => await local.publish(current)))[1])
      }
      const row: SaltPublishRow = {
        n,
        catchUpBytes: caughtUp.bytesSent,
        catchUpMs: round(catchUpMs),
        additionBytes: median(additions.map((a) => a.bytes)),
        additionMs: round(median(additions.map((a) => a.ms))),
        deletionBytes: deleted.bytesSent,
        deletionMs: round(deletionMs),
        localAdditionMs: round(median(localMs)),
      }
      rows.push(row)
      onRow(row)
      await client.close()
    }
  } finally {
    await lab.stop()
  }
  return rows
}
