// Running an execution function through salt-api's local client and deciding whether it worked.
// Salt reports most failures inside a 200 answer, as a value rather than a status, so a call we
// cannot confirm is a failure: a target no minion answers for, or a return that says it failed.
import { errors } from '../errors.js'
import type { LocalOptions, SaltClient } from './client.js'

export type LocalClient = Pick<SaltClient, 'local'>

/** A Salt function and its arguments, as configured (DNSMASQ_*_FUNCTION / _ARGS). */
export interface SaltFunction {
  fun: string
  args: string[]
}

const FAILURE_PREFIXES = [
  'ERROR', 'The minion function caused an exception', 'Passed invalid arguments', 'Minion did not return',
]

/** Why a function's return value means it failed, or null when it succeeded. */
export function localFailure(value: unknown): string | null {
  if (value === false) return 'it returned False'
  if (typeof value === 'string') {
    if (FAILURE_PREFIXES.some((p) => value.startsWith(p)) || / is not available\.?$/.test(value))
      return value.slice(0, 500)
    return null
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const r = value as Record<string, unknown>
    if (typeof r.retcode === 'number' && r.retcode !== 0) {
      const detail = [r.stderr, r.stdout].find((s) => typeof s === 'string' && s.trim() !== '') as string | undefined
      return `exit code ${r.retcode}${detail === undefined ? '' : `: ${detail.trim().slice(0, 500)}`}`
    }
    if (r.result === false) return typeof r.comment === 'string' ? r.comment : 'it returned result: False'
  }
  return null
}

/** Runs `call` on `target` and returns the ids of the minions that ran it, all successfully. */
export async function callOnMinions(
  client: LocalClient,
  target: string,
  call: SaltFunction,
  leadingArgs: readonly string[] = [],
  opts: LocalOptions = {},
): Promise<string[]> {
  const results = await client.local(target, call.fun, [...leadingArgs, ...call.args], opts)
  const minions = Object.keys(results).sort()
  if (minions.length === 0) throw new errors.SALTMASQ_APPLY_NO_MINION(target, call.fun)
  for (const minion of minions) {
    const failure = localFailure(results[minion])
    if (failure !== null) throw new errors.SALTMASQ_APPLY_FAILED(call.fun, minion, failure)
  }
  return minions
}
