// The one set of timers, injected beside the clock so a test can run time forward without sleeping.
export interface Timers {
  setTimeout: (fn: () => void, ms: number) => NodeJS.Timeout
  clearTimeout: (timer: NodeJS.Timeout) => void
}

export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => {
    clearTimeout(timer)
  },
}

export async function sleep(ms: number, timers: Timers = systemTimers): Promise<void> {
  await new Promise<void>((resolve) => {
    timers.setTimeout(resolve, ms)
  })
}
