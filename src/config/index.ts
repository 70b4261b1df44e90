// The typed Config the rest of the code uses, named after the variables it comes from: the
// schema of the variables is env.ts's, the rules between them rules.ts's; this file maps them.
import envSchemaValidator from 'env-schema'
import type { Subnets } from '../ledger/validate.js'
import type { SaltFunction } from '../salt/local-call.js'
import { envSchema, type Env, type FormatName, type TargetType } from './env.js'
import { applyFunction, checkRules, hmacKey, optionalFunction } from './rules.js'

export { envSchema, FORMAT_NAMES, TARGET_TYPES, type Env, type FormatName, type TargetType } from './env.js'

export interface Config {
  host: string
  port: number
  logLevel: string
  heapGrowthPercent: number
  salt: {
    url: string
    username: string
    password: string
    eauth: string
    caFile?: string
    insecure: boolean
    timeoutMs: number
    retries: number
    maxResponseBytes: number
  }
  webhook: {
    token: string
    /** Standard Webhooks signing secret; null: signatures are not checked. */
    hmacSecret: Buffer | null
    hookRateLimit: number
    resyncRateLimit: number
  }
  /** Bearer token for GET /metrics; null: open, like /health. */
  metricsToken: string | null
  mine: { target: string, fun: string, byMac: boolean, waitMs: number }
  reconcileIntervalMs: number
  events: {
    /** Read salt-api's GET /events. */
    stream: boolean
    streamMaxAgeMs: number
    /** Minions whose salt/cloud/* events count (they run salt-cloud themselves). */
    cloudEventMinions: ReadonlySet<string>
  }
  /** Release a reservation whose minion's key has been gone this long; 0: never. */
  keyGoneAfterMs: number
  /** How long a destroyed event waits for the key list to confirm it. */
  destroyConfirmMs: number
  subnets: Subnets
  format: FormatName
  files: {
    conf: string
    dhcpHosts: string
    addnHosts: string
    dhcpHostsDir: string
    dnsHostsDir: string
    state: string
  }
  /** hostsfile format: additions as delta files in files.dhcpHostsDir. */
  hostsfileDeltas: boolean
  /** Formats whose apply is costly (hostsdir): the least time between two applies. */
  reloadMinIntervalMs: number
  dnsDomain?: string
  dnsmasq: {
    minion: string
    targetType: TargetType
    publish: 'local' | 'salt'
    /** Salt's timeout and gather_job_timeout for a publish call. */
    publishWaitS: number
    /** What makes dnsmasq take the files in (reload or restart): the one thing "apply" means. */
    apply: SaltFunction
    /** conf format only: the syntax check run before a restart (DNSMASQ_TEST_FUNCTION); null when turned off */
    test: SaltFunction | null
    /** null when turned off */
    release: SaltFunction | null
  }
}

export function toConfig(env: Env): Config {
  const { subnets, cloudEventMinions, test } = checkRules(env)
  const format = env.RESERVATIONS_FORMAT
  const config: Config = {
    host: env.HOST,
    port: env.PORT,
    logLevel: env.LOG_LEVEL,
    heapGrowthPercent: env.HEAP_GROWTH_PERCENT,
    salt: {
      url: env.SALT_API_URL.replace(/\/+$/, ''),
      username: env.SALT_API_USER,
      password: env.SALT_API_PASSWORD,
      eauth: env.SALT_API_EAUTH,
      insecure: env.SALT_API_INSECURE,
      timeoutMs: env.SALT_API_TIMEOUT_MS,
      retries: env.SALT_API_RETRIES,
      maxResponseBytes: env.SALT_API_MAX_RESPONSE_MB * 1024 * 1024,
    },
    webhook: {
      token: env.WEBHOOK_TOKEN,
      hmacSecret: env.WEBHOOK_HMAC_SECRET === undefined ? null : hmacKey(env.WEBHOOK_HMAC_SECRET),
      hookRateLimit: env.HOOK_RATE_LIMIT,
      resyncRateLimit: env.RESYNC_RATE_LIMIT,
    },
    metricsToken: env.METRICS_TOKEN ?? null,
    mine: {
      target: env.MINE_TARGET,
      fun: env.MINE_FUNCTION,
      byMac: env.MINE_FUNCTION === 'network.interfaces',
      waitMs: env.MINE_WAIT_MS,
    },
    reconcileIntervalMs: env.RECONCILE_INTERVAL_S * 1000,
    events: {
      stream: env.EVENT_STREAM,
      streamMaxAgeMs: env.STREAM_MAX_AGE_S * 1000,
      cloudEventMinions: new Set(cloudEventMinions),
    },
    keyGoneAfterMs: env.DESTROY_WHEN_KEY_GONE_S * 1000,
    destroyConfirmMs: env.DESTROY_CONFIRM_S * 1000,
    subnets,
    format,
    files: {
      conf: env.RESERVATIONS_FILE,
      dhcpHosts: env.DHCP_HOSTSFILE,
      addnHosts: env.ADDN_HOSTS_FILE,
      dhcpHostsDir: env.DHCP_HOSTSDIR,
      dnsHostsDir: env.DNS_HOSTSDIR,
      state: env.STATE_FILE,
    },
    reloadMinIntervalMs: env.RELOAD_MIN_INTERVAL_S * 1000,
    // Salt publishing sends whole files and reloads: no delta files there.
    hostsfileDeltas: format === 'hostsfile' && env.HOSTSFILE_DELTAS && env.DNSMASQ_PUBLISH === 'local',
    dnsmasq: {
      minion: env.DNSMASQ_MINION,
      targetType: env.DNSMASQ_MINION_TGT_TYPE,
      publish: env.DNSMASQ_PUBLISH,
      publishWaitS: env.DNSMASQ_PUBLISH_WAIT_S,
      apply: applyFunction(format, env.DNSMASQ_APPLY_FUNCTION, env.DNSMASQ_APPLY_ARGS),
      test: format === 'conf' ? test : null,
      release: optionalFunction(env.DNSMASQ_RELEASE_FUNCTION, 'DNSMASQ_RELEASE_ARGS', env.DNSMASQ_RELEASE_ARGS),
    },
  }
  if (env.SALT_API_CA_FILE !== undefined) config.salt.caFile = env.SALT_API_CA_FILE
  if (env.DNS_DOMAIN !== undefined) config.dnsDomain = env.DNS_DOMAIN
  return config
}

/**
 * The typed config from raw environment variables: defaults filled in, every value checked.
 * Throws an error naming the variable on the first bad one.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  return toConfig(envSchemaValidator<Env>({ schema: envSchema, data: env, env: false, dotenv: false }))
}
