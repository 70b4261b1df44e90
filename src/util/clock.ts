// The one clock: epoch milliseconds, injected wherever time is read so tests can set it.
export type Clock = () => number

export const systemClock: Clock = () => Date.now()

/** An epoch-ms time as the API shows it (ISO 8601); null stays null. */
export function iso(ms: number): string
export function iso(ms: number | null): string | null
export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString()
}
