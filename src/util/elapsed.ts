// Stage timings (`stagesMs`, a publish's prepare/write/apply): milliseconds on the monotonic
// clock, to a tenth.
export function msSince(start: number, now = performance.now()): number {
  return Math.round((now - start) * 10) / 10
}

/** A lap timer: each call returns the time since the previous one (or since it was made). */
export function laps(): () => number {
  let mark = performance.now()
  return () => {
    const now = performance.now()
    const ms = msSince(mark, now)
    mark = now
    return ms
  }
}
