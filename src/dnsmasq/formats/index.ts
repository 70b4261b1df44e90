// Format name (RESERVATIONS_FORMAT) → its module. Adding a format: one module in this folder,
// its name in FORMAT_NAMES (src/config.ts), and its line here, which the compiler asks for.
import type { FormatName } from '../../config.js'
import type { OpenFormat } from '../format.js'
import { openConf } from './conf.js'
import { openHostsdir } from './hostsdir.js'
import { openHostsfile } from './hostsfile.js'

export const FORMATS: Readonly<Record<FormatName, OpenFormat>> = {
  hostsfile: openHostsfile,
  hostsdir: openHostsdir,
  conf: openConf,
}
