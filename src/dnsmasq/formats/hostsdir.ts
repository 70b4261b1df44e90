// hostsdir format: one file per reservation in a dhcp-hostsdir and a hostsdir, named by minion
// id. dnsmasq reads new and changed files through inotify, so additions need no apply at all. A
// dhcp-hostsdir file removed or replaced leaves its old record in dnsmasq until SIGHUP, and that
// SIGHUP re-reads every file (seconds at scale): those applies are paced.
import { join } from 'node:path'
import type { OpenFormat } from '../format.js'
import { HostsDirectory } from '../hosts-directory.js'
import { LineRenderer } from '../lines.js'

export const openHostsdir: OpenFormat = async (config) => {
  const dhcp = await HostsDirectory.open(config.files.dhcpHostsDir)
  const dns = await HostsDirectory.open(config.files.dnsHostsDir)
  const renderer = new LineRenderer(config.dnsDomain === undefined ? {} : { domain: config.dnsDomain })
  const unowned = (): string[] => [
    ...dhcp.unowned.map((name) => join(dhcp.path, name)),
    ...dns.unowned.map((name) => join(dns.path, name)),
  ]
  return {
    name: 'hostsdir',
    pacedApply: true,
    get unownedFiles() {
      return unowned()
    },
    legacyOwedMarker: join(dhcp.path, '.saltmasq-reload-owed'),
    prepare: async (reservations) => {
      const entries = renderer.entries(reservations)
      const dhcpPlan = dhcp.plan(entries.dhcpHosts)
      const dnsPlan = dns.plan(entries.dnsHosts)
      return {
        need: dhcpPlan.gone.length > 0 || dhcpPlan.replaced.size > 0 ? 'apply' : 'none',
        lines: () => [...dhcp.planLines(dhcpPlan), ...dns.planLines(dnsPlan)],
        commit: async () => {
          const changes = [
            [dhcp, await dhcp.write(dhcpPlan)],
            [dns, await dns.write(dnsPlan)],
          ] as const
          return {
            filesChanged: changes
              .filter(([, c]) => c.created.length + c.replaced.size + c.removed.size > 0)
              .map(([dir]) => dir.path),
            entriesWritten: changes.reduce((n, [, c]) => n + c.created.length + c.replaced.size, 0),
            entriesRemoved: changes.reduce((n, [, c]) => n + c.removed.size, 0),
            blocked: [...new Set(changes.flatMap(([, c]) => c.blocked))].sort(),
            // Nothing is checked in this format, so nothing is ever put back.
            undo: async () => {},
          }
        },
      }
    },
    readBack: async () => ({ source: dhcp.path, text: [...dhcp.owned.values()].join('') }),
  }
}
