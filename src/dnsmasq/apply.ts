// Makes dnsmasq pick up changed files by running a Salt function on the dnsmasq minion through
// salt-api (DNSMASQ_APPLY_FUNCTION with DNSMASQ_APPLY_ARGS: service.restart dnsmasq by default).
// A target that no minion answers for, or a function that reports failure, is an error: an
// apply we cannot confirm is not an apply.
import { errors } from '../errors.js'
import type { SaltClient } from '../salt/client.js'
import { localFailure } from '../salt/results.js'

export interface SaltCall {
  target: string
  fun: string
  args: readonly string[]
}

/** Runs `call` and returns the ids of the minions that ran it successfully. */
export async function runOnDnsmasqMinion (client: Pick<SaltClient, 'local'>, call: SaltCall): Promise<string[]> {
  const results = await client.local(call.target, call.fun, call.args)
  const minions = Object.keys(results).sort()
  if (minions.length === 0) throw new errors.ApplyNoMinion(call.target, call.fun)
  for (const minion of minions) {
    const failure = localFailure(results[minion])
    if (failure !== null) throw new errors.ApplyFailed(call.fun, minion, failure)
  }
  return minions
}
