// Exponential backoff with full jitter: attempt n waits a random time in [0, min(max, base·2ⁿ)],
// so many clients that failed together do not retry together. Pure (the random source is passed).
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30))
  return Math.round(ceiling * random())
}
