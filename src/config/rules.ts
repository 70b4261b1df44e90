// The rules between variables, and the values that need parsing: each broken rule stops
// start-up with an error naming the variable to change.
import { dirname, resolve } from 'node:path'
import { errors } from '../errors.js'
import { hostNameProblem, Subnets } from '../ledger/validate.js'
import type { SaltFunction } from '../salt/local-call.js'
import type { Env, FormatName } from './env.js'

/** What the rules parse on the way: the subnets, the clients of cloud events, the test function. */
export interface Parsed {
  subnets: Subnets
  cloudEventMinions: string[]
  test: SaltFunction | null
}

/** Checks every rule between variables; throws SALTMASQ_BAD_CONFIG naming the first one broken. */
export function checkRules(env: Env): Parsed {
  let subnets: Subnets
  try {
    subnets = new Subnets(commaList(env.MANAGED_SUBNETS))
  } catch (err) {
    throw new errors.SALTMASQ_BAD_CONFIG('MANAGED_SUBNETS', (err as Error).message)
  }
  try {
    subnets = new Subnets(subnets.cidrs, commaList(env.EXCLUDED_ADDRESSES))
  } catch (err) {
    throw new errors.SALTMASQ_BAD_CONFIG('EXCLUDED_ADDRESSES', (err as Error).message)
  }
  const cloudEventMinions = commaList(env.CLOUD_EVENT_MINIONS)
  for (const id of cloudEventMinions) {
    const problem = hostNameProblem(id)
    if (problem !== null)
      throw new errors.SALTMASQ_BAD_CONFIG(
        'CLOUD_EVENT_MINIONS',
        `'${id}' is not a minion id saltmasq could reserve: ${problem}`,
      )
  }
  if (env.DNS_DOMAIN !== undefined && hostNameProblem(env.DNS_DOMAIN) !== null) {
    throw new errors.SALTMASQ_BAD_CONFIG('DNS_DOMAIN', `'${env.DNS_DOMAIN}' is not a valid domain name`)
  }
  const format = env.RESERVATIONS_FORMAT
  if (format === 'hostsdir' && resolve(env.DHCP_HOSTSDIR) === resolve(env.DNS_HOSTSDIR)) {
    // dnsmasq would read each file twice, once as DHCP hosts and once as DNS hosts.
    throw new errors.SALTMASQ_BAD_CONFIG('DNS_HOSTSDIR', 'must not be the same directory as DHCP_HOSTSDIR')
  }
  if (env.DNSMASQ_PUBLISH === 'salt' && format === 'hostsdir') {
    throw new errors.SALTMASQ_BAD_CONFIG(
      'DNSMASQ_PUBLISH',
      'salt publishing takes RESERVATIONS_FORMAT hostsfile '
      + 'or conf: a file per reservation is a Salt call per change and a directory to keep in step on every minion',
    )
  }
  if (env.DNSMASQ_PUBLISH === 'salt' && env.DNSMASQ_PUBLISH_WAIT_S * 2000 >= env.SALT_API_TIMEOUT_MS) {
    throw new errors.SALTMASQ_BAD_CONFIG(
      'DNSMASQ_PUBLISH_WAIT_S',
      `${env.DNSMASQ_PUBLISH_WAIT_S} s twice over is `
      + `longer than SALT_API_TIMEOUT_MS (${env.SALT_API_TIMEOUT_MS} ms): a publish to a minion that is down `
      + `would time out for every minion`,
    )
  }
  if (format === 'hostsfile' && env.HOSTSFILE_DELTAS && env.DNSMASQ_PUBLISH === 'local') {
    const deltaDir = resolve(env.DHCP_HOSTSDIR)
    const bases = [dirname(resolve(env.DHCP_HOSTSFILE)), dirname(resolve(env.ADDN_HOSTS_FILE))]
    // dnsmasq would read the base files as delta files too, or one delta as DHCP and DNS hosts.
    if (bases.includes(deltaDir))
      throw new errors.SALTMASQ_BAD_CONFIG(
        'DHCP_HOSTSDIR',
        'the delta directory of the hostsfile format must not hold DHCP_HOSTSFILE or ADDN_HOSTS_FILE',
      )
    const dnsDir = resolve(env.DNS_HOSTSDIR)
    if (bases.includes(dnsDir) || dnsDir === deltaDir)
      throw new errors.SALTMASQ_BAD_CONFIG(
        'DNS_HOSTSDIR',
        'the DNS delta directory of the hostsfile format must not hold the base files nor be DHCP_HOSTSDIR',
      )
  }
  // Parsed whatever the format, so a bad value is caught before someone switches formats.
  const test = optionalFunction(env.DNSMASQ_TEST_FUNCTION, 'DNSMASQ_TEST_ARGS', env.DNSMASQ_TEST_ARGS)
  return { subnets, cloudEventMinions, test }
}

export function optionalFunction(fun: string, argsName: string, argsText: string): SaltFunction | null {
  const args = jsonStringArray(argsName, argsText)
  return fun === '' ? null : { fun, args }
}

/** Standard Webhooks secrets are `whsec_` + base64; anything else is used as raw bytes. */
export function hmacKey(secret: string): Buffer {
  if (secret.startsWith('whsec_')) {
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64')
    if (key.length < 16)
      throw new errors.SALTMASQ_BAD_CONFIG(
        'WEBHOOK_HMAC_SECRET',
        'a whsec_ secret must hold at least 16 bytes of base64',
      )
    return key
  }
  return Buffer.from(secret, 'utf8')
}

function jsonStringArray(name: string, text: string): string[] {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new errors.SALTMASQ_BAD_CONFIG(name, `must be a JSON array of strings, got ${text}`)
  }
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new errors.SALTMASQ_BAD_CONFIG(name, `must be a JSON array of strings, got ${text}`)
  }
  return value
}

function commaList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
}

export function applyFunction(
  format: FormatName,
  fun: string | undefined,
  args: string | undefined,
): { fun: string, args: string[] } {
  const chosen = fun ?? (format === 'conf' ? 'service.restart' : 'saltmasq.reload')
  return {
    fun: chosen,
    args:
      args === undefined
        ? chosen.startsWith('service.')
          ? ['dnsmasq']
          : []
        : jsonStringArray('DNSMASQ_APPLY_ARGS', args),
  }
}
