// hostsfile format (the default): every reservation in one dhcp-hostsfile and one addn-hosts
// file; dnsmasq re-reads both on SIGHUP (the apply, service.reload by default).
import type { OpenFormat } from '../format.js'
import { renderHostsFiles } from '../lines.js'
import { readIfExists } from '../../store/atomic-file.js'
import { prepareFiles } from './single-files.js'

export const openHostsfile: OpenFormat = async (config) => {
  const { dhcpHosts, addnHosts } = config.files
  const domain = config.dnsDomain === undefined ? {} : { domain: config.dnsDomain }
  return {
    name: 'hostsfile',
    pacedApply: false,
    unownedFiles: [],
    prepare: async (reservations) => {
      const files = renderHostsFiles(reservations, domain)
      return await prepareFiles([[dhcpHosts, files.dhcpHosts], [addnHosts, files.addnHosts]], 'apply')
    },
    readBack: async () => ({ source: dhcpHosts, text: await readIfExists(dhcpHosts) }),
  }
}
