// B8: a genuine destroy, the way salt-cloud does it, against the real master, salt-api and
// saltmasq: the driver's destroyed event, then (~150 ms later) the accepted key file removed.
// Timed from the key's removal to the sync that released the reservation (files written,
// dnsmasq told); with the key removed first, from the event. The event alone releases nothing:
// saltmasq waits for the key list.
import { pino } from 'pino'
import { Lab } from '../lab/lab.js'
import { sleep, waitFor } from '../lab/processes.js'
import { median, round } from './stats.js'

export interface DestroyRow {
  order: string
  runs: number
  medianMs: number
  minMs: number
  maxMs: number
}

export async function benchDestroy(samples: number): Promise<DestroyRow[]> {
  const lab = await Lab.start({ minions: [], reactor: false })
  try {
    const app = await lab.startSaltmasq(
      lab.saltmasqEnv('hostsfile', { DNS_DOMAIN: 'lab', RECONCILE_INTERVAL_S: '0', LOG_LEVEL: 'silent' }),
      pino({ level: 'silent' }),
    )
    const released = new Map<string, number>()
    app.saltmasq.scheduler.onSync((r) => {
      for (const x of r.removed) released.set(x.minionId, Date.now())
    })
    const fleet = await lab.salt.load.registerFakeMinions(2 * samples, '10.77.8', 'gone')
    await app.inject({ method: 'POST', url: '/resync?wait=true', headers: lab.auth })
    const rows: DestroyRow[] = []
    for (const [order, eventFirst] of [
      ['event, then key removed 150 ms later (salt-cloud -d): from the key', true],
      ['key removed, then the event: from the event', false],
    ] as const) {
      const times: number[] = []
      for (const id of fleet.splice(0, samples)) {
        await app.saltmasq.scheduler.idle()
        let from = 0
        if (eventFirst) {
          await lab.salt.load.fireCloudEvents('destroyed', 1, id)
          await sleep(150)
          from = Date.now()
          await lab.salt.removeAcceptedKey(id)
        } else {
          await lab.salt.removeAcceptedKey(id)
          from = (await lab.salt.load.fireCloudEvents('destroyed', 1, id)).at
        }
        await waitFor(`${id} released`, () => released.has(id), 30_000, 5)
        times.push(released.get(id)! - from)
      }
      rows.push({
        order,
        runs: times.length,
        medianMs: round(median(times)),
        minMs: round(Math.min(...times)),
        maxMs: round(Math.max(...times)),
      })
    }
    return rows
  } finally {
    await lab.stop()
  }
}
