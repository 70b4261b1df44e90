// The DHCP lab's scenarios with RESERVATIONS_FORMAT=hostsdir (see promises.ts).
import { provePromises } from './promises.js'

await provePromises('hostsdir')
