// The one place the environment is described. `envSchema` validates the raw variables (with
// env-schema, the validator @fastify/env runs in the app) and `toConfig` turns them into the
// typed Config the rest of the code uses; `loadConfig` does both, for the app, the tests and the
// benchmarks alike. A bad value stops start-up with a message naming the variable.
// Over 250 lines: the schema of every variable is in one place on purpose (the README's table and
// --help read it); issue #20 moves the cross-variable rules out of toConfig.
import { dirname, resolve } from 'node:path'
import envSchemaValidator from 'env-schema'
import { Type, type Static } from 'typebox'
import { errors } from './errors.js'
import type { SaltFunction } from './salt/local-call.js'
import { hostNameProblem, Subnets } from './ledger/validate.js'

/**
 * The ways saltmasq can hand reservations to dnsmasq. Each is one module in src/dnsmasq/formats/
 * (the registry there will not compile until a name listed here has its module).
 */
export const FORMAT_NAMES = ['hostsdir', 'hostsfile', 'conf'] as const
export type FormatName = typeof FORMAT_NAMES[number]

/** Salt's tgt_type values that name minions (DNSMASQ_MINION_TGT_TYPE). */
export const TARGET_TYPES = ['glob', 'pcre', 'list', 'grain', 'grain_pcre', 'pillar', 'pillar_pcre', 'nodegroup', 'range', 'compound', 'ipcidr'] as const
export type TargetType = typeof TARGET_TYPES[number]

export const envSchema = Type.Object({
  HOST: Type.String({ default: '127.0.0.1' }),
  PORT: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  // How far the JavaScript heap may grow past what the last full GC left; 0 leaves it to V8.
  HEAP_GROWTH_PERCENT: Type.Integer({ default: 20, minimum: 0, maximum: 300 }),

  SALT_API_URL: Type.String({ pattern: '^https?://' }),
  SALT_API_USER: Type.String({ minLength: 1 }),
  SALT_API_PASSWORD: Type.String({ minLength: 1 }),
  SALT_API_EAUTH: Type.String({ default: 'pam', minLength: 1 }),
  SALT_API_CA_FILE: Type.Optional(Type.String({ minLength: 1 })),
  SALT_API_TIMEOUT_MS: Type.Integer({ default: 10000, minimum: 100 }),
  SALT_API_RETRIES: Type.Integer({ default: 3, minimum: 0, maximum: 10 }),
  SALT_API_INSECURE: Type.Boolean({ default: false }),
  // The largest answer read from salt-api; the mine holds what minions say, so it is bounded.
  SALT_API_MAX_RESPONSE_MB: Type.Integer({ default: 256, minimum: 1 }),

  WEBHOOK_TOKEN: Type.String({ minLength: 32 }),
  WEBHOOK_HMAC_SECRET: Type.Optional(Type.String({ minLength: 24 })),
  HOOK_RATE_LIMIT: Type.Integer({ default: 1200, minimum: 1 }),
  RESYNC_RATE_LIMIT: Type.Integer({ default: 30, minimum: 1 }),
  // GET /metrics is open like /health unless this is set; then it wants `Bearer <METRICS_TOKEN>`.
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 32 })),

  MINE_TARGET: Type.String({ default: '*', minLength: 1 }),
  MINE_FUNCTION: Type.String({ default: 'network.ip_addrs', minLength: 1 }),
  MANAGED_SUBNETS: Type.String({ minLength: 1 }),
  // Never reserved, though inside MANAGED_SUBNETS: gateways, the dnsmasq hosts, anything static
  // (CIDRs or addresses). Each subnet's network and broadcast address never are either.
  EXCLUDED_ADDRESSES: Type.String({ default: '' }),
  MINE_WAIT_MS: Type.Integer({ default: 60000, minimum: 0 }),
  RECONCILE_INTERVAL_S: Type.Integer({ default: 300, minimum: 0 }),

  // Read salt-api's own event stream (GET /events) beside the reactor's webhook.
  EVENT_STREAM: Type.Boolean({ default: true }),
  // The stream has no heartbeat: a connection older than this is closed and opened again (and
  // every (re)connect is followed by a full sync), so a dead one is never trusted for long.
  STREAM_MAX_AGE_S: Type.Integer({ default: 900, minimum: 10 }),
  // A reservation whose minion has had no accepted key on every key list read for this long is
  // released as if destroyed (its destroyed event was lost); 0 turns it off.
  DESTROY_WHEN_KEY_GONE_S: Type.Integer({ default: 900, minimum: 0 }),
  // A destroyed event releases a reservation only once the key list shows the key gone: it is
  // read again for this long, then the event is dropped as not confirmed.
  DESTROY_CONFIRM_S: Type.Integer({ default: 600, minimum: 1 }),
  // Minions that run salt-cloud themselves (the cloud execution module): their cloud events
  // count. Any other minion's salt/cloud/* event is refused.
  CLOUD_EVENT_MINIONS: Type.String({ default: '' }),

  // hostsfile stays the default: measured on dnsmasq 2.90 (README "Choosing a format"), each
  // file dnsmasq reads through inotify costs it time in proportion to every reservation it
  // holds, and a SIGHUP re-reading a directory of N files is far slower than one file of N lines.
  RESERVATIONS_FORMAT: Type.Union(FORMAT_NAMES.map((f) => Type.Literal(f)), { default: 'hostsfile' }),
  DHCP_HOSTSDIR: Type.String({ default: '/etc/dnsmasq.saltmasq/dhcp-hosts.d', minLength: 1 }),
  DNS_HOSTSDIR: Type.String({ default: '/etc/dnsmasq.saltmasq/hosts.d', minLength: 1 }),
  // hostsdir format: dnsmasq forgets a deleted dhcp-hostsdir file only on SIGHUP, which pauses it
  // for seconds at scale; deletions are batched into at most one reload per this many seconds.
  RELOAD_MIN_INTERVAL_S: Type.Integer({ default: 30, minimum: 0 }),
  RESERVATIONS_FILE: Type.String({ default: '/etc/dnsmasq.d/reservations.conf', minLength: 1 }),
  DHCP_HOSTSFILE: Type.String({ default: '/etc/dnsmasq.saltmasq/dhcp-hosts', minLength: 1 }),
  // hostsfile format: additions go as delta files into DHCP_HOSTSDIR (dnsmasq reads them through
  // inotify, no SIGHUP); removals and changes rewrite the files and SIGHUP, paced. false: every
  // change rewrites the files and SIGHUPs at once.
  HOSTSFILE_DELTAS: Type.Boolean({ default: true }),
  ADDN_HOSTS_FILE: Type.String({ default: '/etc/dnsmasq.saltmasq/addn-hosts', minLength: 1 }),
  DNS_DOMAIN: Type.Optional(Type.String({ minLength: 1 })),
  STATE_FILE: Type.String({ default: '/var/lib/saltmasq/state.json', minLength: 1 }),

  DNSMASQ_MINION: Type.String({ minLength: 1 }),
  // How DNSMASQ_MINION is matched (Salt's tgt_type): one dnsmasq or many (a failover pair, one per site).
  DNSMASQ_MINION_TGT_TYPE: Type.Union(TARGET_TYPES.map((t) => Type.Literal(t)), { default: 'glob' }),
  // local: saltmasq writes the dnsmasq files on this host. salt: it sends them to every dnsmasq
  // minion through salt-api (saltmasq.publish), as deltas, and keeps only its state file here.
  DNSMASQ_PUBLISH: Type.Union([Type.Literal('local'), Type.Literal('salt')], { default: 'local' }),
  // salt publishing: how long the master waits for the dnsmasq minions' answers, and again for
  // those still running the call (Salt's timeout and gather_job_timeout). A minion that is down
  // makes each publish take about twice this; keep it under SALT_API_TIMEOUT_MS / 2000.
  DNSMASQ_PUBLISH_WAIT_S: Type.Integer({ default: 3, minimum: 1, maximum: 300 }),
  // Unset: saltmasq.reload for hostsdir and hostsfile (SIGHUP re-reads them: service.reload
  // under systemd, the pid file without a service manager), service.restart dnsmasq for conf
  // (dnsmasq reads conf-dir files only at start).
  DNSMASQ_APPLY_FUNCTION: Type.Optional(Type.String({ minLength: 1 })),
  // Unset: ["dnsmasq"] for service.* functions, [] for any other.
  DNSMASQ_APPLY_ARGS: Type.Optional(Type.String()),
  // conf format: the syntax check run before a restart. An empty value turns it off.
  DNSMASQ_TEST_FUNCTION: Type.String({ default: 'saltmasq.check' }),
  DNSMASQ_TEST_ARGS: Type.String({ default: '[]' }),
  // After a destroyed machine's reservation is gone: free its lease at once (dhcp_release).
  // Called as FUNCTION(ip, *ARGS). An empty value turns it off.
  DNSMASQ_RELEASE_FUNCTION: Type.String({ default: 'saltmasq.release_lease' }),
  DNSMASQ_RELEASE_ARGS: Type.String({ default: '[]' }),
})

export type Env = Static<typeof envSchema>

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
  files: { conf: string, dhcpHosts: string, addnHosts: string, dhcpHostsDir: string, dnsHostsDir: string, state: string }
  /** hostsfile format: additions as delta files in files.dhcpHostsDir. */
  hostsfileDeltas: boolean
  /** Formats whose apply is costly (hostsdir): the least time between two applies. */
  applyMinIntervalMs: number
  dnsDomain?: string
  dnsmasq: {
    minion: string
    targetType: TargetType
    publish: 'local' | 'salt'
    /** Salt's timeout and gather_job_timeout for a publish call. */
    publishWaitS: number
    /** What makes dnsmasq take the files in (reload or restart): the one thing "apply" means. */
    apply: SaltFunction
    /** conf format only: the syntax check run before a restart; null when turned off */
    check: SaltFunction | null
    /** null when turned off */
    release: SaltFunction | null
  }
}

function optionalFunction(fun: string, argsName: string, argsText: string): SaltFunction | null {
  const args = jsonStringArray(argsName, argsText)
  return fun === '' ? null : { fun, args }
}

/** Standard Webhooks secrets are `whsec_` + base64; anything else is used as raw bytes. */
function hmacKey(secret: string): Buffer {
  if (secret.startsWith('whsec_')) {
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64')
    if (key.length < 16) throw new errors.SALTMASQ_BAD_CONFIG('WEBHOOK_HMAC_SECRET', 'a whsec_ secret must hold at least 16 bytes of base64')
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
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '')
}

export function toConfig(env: Env): Config {
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
    if (problem !== null) throw new errors.SALTMASQ_BAD_CONFIG('CLOUD_EVENT_MINIONS', `'${id}' is not a minion id saltmasq could reserve: ${problem}`)
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
    throw new errors.SALTMASQ_BAD_CONFIG('DNSMASQ_PUBLISH', 'salt publishing takes RESERVATIONS_FORMAT hostsfile or conf: a file per reservation is a Salt call per change and a directory to keep in step on every minion')
  }
  if (env.DNSMASQ_PUBLISH === 'salt' && env.DNSMASQ_PUBLISH_WAIT_S * 2000 >= env.SALT_API_TIMEOUT_MS) {
    throw new errors.SALTMASQ_BAD_CONFIG('DNSMASQ_PUBLISH_WAIT_S', `${env.DNSMASQ_PUBLISH_WAIT_S} s twice over is longer than SALT_API_TIMEOUT_MS (${env.SALT_API_TIMEOUT_MS} ms): a publish to a minion that is down would time out for every minion`)
  }
  if (format === 'hostsfile' && env.HOSTSFILE_DELTAS && env.DNSMASQ_PUBLISH === 'local') {
    const deltaDir = resolve(env.DHCP_HOSTSDIR)
    const bases = [dirname(resolve(env.DHCP_HOSTSFILE)), dirname(resolve(env.ADDN_HOSTS_FILE))]
    // dnsmasq would read the base files as delta files too, or one delta as DHCP and DNS hosts.
    if (bases.includes(deltaDir)) throw new errors.SALTMASQ_BAD_CONFIG('DHCP_HOSTSDIR', 'the delta directory of the hostsfile format must not hold DHCP_HOSTSFILE or ADDN_HOSTS_FILE')
    const dnsDir = resolve(env.DNS_HOSTSDIR)
    if (bases.includes(dnsDir) || dnsDir === deltaDir) throw new errors.SALTMASQ_BAD_CONFIG('DNS_HOSTSDIR', 'the DNS delta directory of the hostsfile format must not hold the base files nor be DHCP_HOSTSDIR')
  }
  // Parsed whatever the format, so a bad value is caught before someone switches formats.
  const check = optionalFunction(env.DNSMASQ_TEST_FUNCTION, 'DNSMASQ_TEST_ARGS', env.DNSMASQ_TEST_ARGS)
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
    mine: { target: env.MINE_TARGET, fun: env.MINE_FUNCTION, byMac: env.MINE_FUNCTION === 'network.interfaces', waitMs: env.MINE_WAIT_MS },
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
    applyMinIntervalMs: env.RELOAD_MIN_INTERVAL_S * 1000,
    // Salt publishing sends whole files and reloads: no delta files there.
    hostsfileDeltas: format === 'hostsfile' && env.HOSTSFILE_DELTAS && env.DNSMASQ_PUBLISH === 'local',
    dnsmasq: {
      minion: env.DNSMASQ_MINION,
      targetType: env.DNSMASQ_MINION_TGT_TYPE,
      publish: env.DNSMASQ_PUBLISH,
      publishWaitS: env.DNSMASQ_PUBLISH_WAIT_S,
      apply: applyFunction(format, env.DNSMASQ_APPLY_FUNCTION, env.DNSMASQ_APPLY_ARGS),
      check: format === 'conf' ? check : null,
      release: optionalFunction(env.DNSMASQ_RELEASE_FUNCTION, 'DNSMASQ_RELEASE_ARGS', env.DNSMASQ_RELEASE_ARGS),
    },
  }
  if (env.SALT_API_CA_FILE !== undefined) config.salt.caFile = env.SALT_API_CA_FILE
  if (env.DNS_DOMAIN !== undefined) config.dnsDomain = env.DNS_DOMAIN
  return config
}

function applyFunction(format: FormatName, fun: string | undefined, args: string | undefined): { fun: string, args: string[] } {
  const chosen = fun ?? (format === 'conf' ? 'service.restart' : 'saltmasq.reload')
  return { fun: chosen, args: args === undefined ? (chosen.startsWith('service.') ? ['dnsmasq'] : []) : jsonStringArray('DNSMASQ_APPLY_ARGS', args) }
}

/**
 * The typed config from raw environment variables: defaults filled in, every value checked.
 * Throws an error naming the variable on the first bad one.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  return toConfig(envSchemaValidator<Env>({ schema: envSchema, data: env, env: false, dotenv: false }))
}
