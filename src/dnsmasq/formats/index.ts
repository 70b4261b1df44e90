// Format name (RESERVATIONS_FORMAT) → its module. Adding a format: one module in this folder,
// its name in FORMAT_NAMES (src/config/env.ts), and its entry here, which the compiler asks for.
import type { Config, FormatName } from '../../config/index.js'
import type { DnsmasqHost } from '../../ledger/reservation.js'
import type { OwedNeed } from '../../store/owed-apply.js'
import type { OpenFormat } from '../format.js'
import { confFiles, openConf } from './conf.js'
import { openHostsdir } from './hostsdir.js'
import { hostsfileFiles, openHostsfile } from './hostsfile.js'
import type { WholeFiles } from './single-files.js'

export interface FormatEntry {
  /** The format as the local publisher writes it. */
  open: OpenFormat
  /** The whole files publishing through Salt sends; null: a directory of files is not sent through Salt. */
  wholeFiles: ((config: Config) => (reservations: readonly DnsmasqHost[]) => WholeFiles) | null
  /** What dnsmasq needs once those files changed. */
  need: OwedNeed
}

export const FORMATS: Readonly<Record<FormatName, FormatEntry>> = {
  hostsfile: { open: openHostsfile, wholeFiles: (config) => hostsfileFiles(config), need: 'apply' },
  hostsdir: { open: openHostsdir, wholeFiles: null, need: 'apply' },
  conf: { open: openConf, wholeFiles: confFiles, need: 'checked-apply' },
}
