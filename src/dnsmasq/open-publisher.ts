// Picks the publisher DNSMASQ_PUBLISH names. Kept apart from publisher.ts so the two
// implementations can import the interface without importing each other.
import { LocalPublisher } from './local-publisher.js'
import type { Publisher, PublisherOptions } from './publisher.js'
import { SaltPublisher } from './salt-publisher.js'

export async function openPublisher(opts: PublisherOptions): Promise<Publisher> {
  return opts.config.dnsmasq.publish === 'salt' ? await SaltPublisher.open(opts) : await LocalPublisher.open(opts)
}
