// salt-cloud's event tags, read once for every source of events (the reactor's webhook today).
// Pure. The minion id comes from the tag and must be a valid dnsmasq host name.
import { hostNameProblem } from '../ledger/validate.js'

export type CloudEventKind = 'created' | 'destroyed'

export interface CloudEvent {
  kind: CloudEventKind
  minionId: string
}

const TAG = /^salt\/cloud\/([^/]+)\/(created|destroyed)$/

/** The event a tag names, or why it names none. */
export function parseCloudEventTag(
  tag: string,
):
  | { event: CloudEvent }
  | { problem: 'not-a-cloud-event' }
  | { problem: 'bad-minion-id', minionId: string, reason: string } {
  const match = TAG.exec(tag)
  if (match === null) return { problem: 'not-a-cloud-event' }
  const minionId = match[1]!
  const reason = hostNameProblem(minionId)
  if (reason !== null) return { problem: 'bad-minion-id', minionId, reason }
  return { event: { kind: match[2] as CloudEventKind, minionId } }
}
