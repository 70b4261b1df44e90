// conf format (the seed's way): `dhcp-host=` lines in one conf-dir file. dnsmasq reads conf
// files only at start, so the apply is a restart, and the file is checked (`dnsmasq --test` on
// the dnsmasq minion) first: a file dnsmasq rejects would keep it from starting again.
import type { OpenFormat } from '../format.js'
import { renderConfFile } from '../lines.js'
import { readIfExists } from '../../store/atomic-file.js'
import { prepareFiles } from './single-files.js'

export const openConf: OpenFormat = async (config) => {
  const path = config.files.conf
  return {
    name: 'conf',
    pacedApply: false,
    unownedFiles: [],
    prepare: async (reservations) => await prepareFiles([[path, renderConfFile(reservations)]], 'checked-apply'),
    readBack: async () => ({ source: path, text: await readIfExists(path) }),
  }
}
