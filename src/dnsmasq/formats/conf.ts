// conf format (the seed's way): `dhcp-host=` lines in one conf-dir file. dnsmasq reads conf
// files only at start, so the apply is a restart, and the file is checked (`dnsmasq --test` on
// the dnsmasq minion) first: a file dnsmasq rejects would keep it from starting again.
import type { Config } from '../../config/index.js'
import type { DnsmasqHost } from '../../ledger/reservation.js'
import type { OpenFormat } from '../format.js'
import { LineRenderer } from '../lines.js'
import { wholeFilesFormat, type WholeFiles } from './single-files.js'

/** The one conf-dir file, whole (salt publishing sends the same). */
export function confFiles(config: Config): (reservations: readonly DnsmasqHost[]) => WholeFiles {
  const renderer = new LineRenderer()
  return (reservations) => [[config.files.conf, renderer.confFile(reservations)]]
}

export const openConf: OpenFormat = async (config) =>
  wholeFilesFormat('conf', confFiles(config), 'checked-apply', config.files.conf)
