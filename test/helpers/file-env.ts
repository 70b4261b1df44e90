// Every file and directory saltmasq writes, under one temporary directory.
import { join } from 'node:path'

export function fileEnv(dir: string): Record<string, string> {
  return {
    RESERVATIONS_FILE: join(dir, 'reservations.conf'),
    DHCP_HOSTSFILE: join(dir, 'dhcp-hosts'),
    ADDN_HOSTS_FILE: join(dir, 'addn-hosts'),
    DHCP_HOSTSDIR: join(dir, 'dhcp-hosts.d'),
    DNS_HOSTSDIR: join(dir, 'hosts.d'),
    STATE_FILE: join(dir, 'state.json'),
  }
}
