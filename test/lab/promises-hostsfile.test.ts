// The DHCP lab's scenarios with RESERVATIONS_FORMAT=hostsfile (see promises.ts).
import { provePromises } from './promises.js'

await provePromises('hostsfile')
