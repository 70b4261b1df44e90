// Which setting a file path came from, so a start-up error about a file names the variable.
import { dirname, relative } from 'node:path'
import type { Config } from '../config/index.js'

const VARIABLES: Array<[keyof Config['files'], string]> = [
  ['state', 'STATE_FILE'],
  ['conf', 'RESERVATIONS_FILE'],
  ['dhcpHosts', 'DHCP_HOSTSFILE'],
  ['addnHosts', 'ADDN_HOSTS_FILE'],
  ['dhcpHostsDir', 'DHCP_HOSTSDIR'],
  ['dnsHostsDir', 'DNS_HOSTSDIR'],
]

/** The variable whose path is `path`, lies under it, or holds it (its directory); null if none. */
export function variableForPath(path: string, config: Config): string | null {
  for (const [key, variable] of VARIABLES) {
    const configured = config.files[key]
    if (configured === path || configured === dirname(path)) return variable
    const rel = relative(configured, path)
    if (!rel.startsWith('..') && rel !== path) return variable
    // A parent of the configured file that is not a directory (ENOTDIR) or could not be made.
    const up = relative(path, configured)
    if (!up.startsWith('..') && up !== configured) return variable
  }
  // The owed-apply record beside the state file.
  if (path.startsWith(`${config.files.state}.`)) return 'STATE_FILE'
  return null
}
