// Standard Webhooks signatures (webhook-id, webhook-timestamp, webhook-signature: "v1,<base64>"
// over `${id}.${timestamp}.${raw body}` with HMAC-SHA256). Pure apart from the clock passed in;
// replays are refused by the caller, which remembers ids for the tolerance window.
import { createHmac, timingSafeEqual } from 'node:crypto'

export const TOLERANCE_S = 5 * 60

export interface SignedHeaders {
  id: string | undefined
  timestamp: string | undefined
  signature: string | undefined
}

/** Why the signature is not acceptable, or null when it is. */
export function signatureProblem(headers: SignedHeaders, rawBody: string, key: Buffer, nowS: number): string | null {
  const { id, timestamp, signature } = headers
  if (id === undefined || timestamp === undefined || signature === undefined)
    return 'webhook-id, webhook-timestamp and webhook-signature are all required'
  if (!/^\d{1,12}$/.test(timestamp)) return 'webhook-timestamp must be unix seconds'
  if (Math.abs(nowS - Number(timestamp)) > TOLERANCE_S)
    return `webhook-timestamp is more than ${TOLERANCE_S} s away from now`
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${rawBody}`).digest()
  for (const part of signature.split(' ')) {
    const [version, value] = part.split(',', 2)
    if (version !== 'v1' || value === undefined) continue
    const given = Buffer.from(value, 'base64')
    if (given.length === expected.length && timingSafeEqual(given, expected)) return null
  }
  return 'no v1 signature matches'
}

export function sign(id: string, timestamp: number, rawBody: string, key: Buffer): string {
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${rawBody}`).digest('base64')}`
}
