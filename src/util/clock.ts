// The one clock: epoch milliseconds, injected wherever time is read so tests can set it.
export type Clock = () => number

export const systemClock: Clock = () => Date.now()
