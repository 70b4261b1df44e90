// Publishing reservations to dnsmasq, two ways (DNSMASQ_PUBLISH): `local` writes the files on
// this host and has dnsmasq told through Salt; `salt` sends them through salt-api to every
// dnsmasq minion the target matches, which writes them and tells its dnsmasq in the same call.
// The sync pass sees only this interface; open-publisher.ts picks the implementation.
import type { Logger } from 'pino'
import type { Config } from '../config/index.js'
import type { DnsmasqHost } from '../ledger/reservation.js'
import type { LocalClient } from '../salt/local-call.js'
import type { Clock } from '../util/clock.js'
import type { ApplyNeed, FileLines, FormatChange, ReadBack } from './format.js'
import type { MinionStatus } from '../store/minion-records.js'
import type { Owed } from '../store/owed-apply.js'

export interface Published extends FormatChange {
  /** dnsmasq was told (reload or restart) in this publish (on any dnsmasq minion). */
  applied: boolean
  /** An apply is owed and waits (paced, or a dnsmasq minion is behind): sync again in this many ms. */
  applyDueInMs: number | null
  unownedFiles: string[]
  /** DNSMASQ_PUBLISH=salt: each dnsmasq minion, current or behind (empty for local). */
  dnsmasqMinions: MinionStatus[]
  /** DNSMASQ_PUBLISH=salt: bytes of publish calls sent to salt-api (0 for local). */
  bytesSent: number
  /** Rendering and comparing with what is on disk; writing; telling dnsmasq. */
  prepareMs: number
  writeMs: number
  applyMs: number
}

export interface Released {
  released: string[]
  releaseFailures: Array<{ minionId: string, ip: string, reason: string }>
}

export interface PublisherOptions {
  config: Config
  client: LocalClient
  logger: Logger
  clock: Clock
}

export interface Publisher {
  /** The DHCP reservations dnsmasq was last given, and where they are (to rebuild a lost ledger). */
  readBack: () => Promise<ReadBack>
  /** What was published before this process started (the saved ledger): deltas start from it. */
  remember: (reservations: readonly DnsmasqHost[]) => void
  /** The apply dnsmasq is owed, if any, and whether it is only waiting for its turn. */
  readonly owed: (Owed & { paced: boolean }) | null
  readonly dnsmasqMinions: MinionStatus[]
  /** What publishing `reservations` would change, line by line, and whether dnsmasq would be told; writes nothing. */
  preview: (reservations: readonly DnsmasqHost[]) => Promise<{ files: FileLines[], apply: ApplyNeed }>
  publish: (reservations: readonly DnsmasqHost[]) => Promise<Published>
  /** Frees the leases of destroyed machines; a failure is reported, never fatal. */
  release: (removed: readonly DnsmasqHost[]) => Promise<Released>
}
