// Retries of idempotent salt-api calls (mine reads, mine.update, the key list) after a transient
// failure, with full-jitter backoff so that clients that failed together do not retry together.
import type { Logger } from 'pino'
import { isTransientSaltError } from '../errors.js'
import { backoffDelay } from '../util/backoff.js'
import { sleep } from '../util/timers.js'

export interface RetryPolicy {
  retries: number
  baseMs: number
  logger: Logger
}

export async function withRetries<T>(what: string, policy: RetryPolicy, call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call()
    } catch (err) {
      if (attempt >= policy.retries || !isTransientSaltError(err)) throw err
      const delayMs = backoffDelay(attempt, policy.baseMs, 5000)
      const code = (err as { code?: string }).code
      policy.logger.warn({ call: what, code, attempt: attempt + 1, delayMs }, 'salt-api call failed; retrying')
      await sleep(delayMs)
    }
  }
}
