// Every environment variable saltmasq reads, in one schema: validated by env-schema (which
// @fastify/env runs in the app), and read by the README's table and --help.
// Over 100 lines: one line or two per variable, on purpose in one place.
import { Type, type Static } from 'typebox'

/**
 * The ways saltmasq can hand reservations to dnsmasq. Each is one module in src/dnsmasq/formats/
 * (the registry there will not compile until a name listed here has its module).
 */
export const FORMAT_NAMES = ['hostsdir', 'hostsfile', 'conf'] as const
export type FormatName = (typeof FORMAT_NAMES)[number]

/** Salt's tgt_type values that name minions (DNSMASQ_MINION_TGT_TYPE). */
export const TARGET_TYPES = [
  'glob', 'pcre', 'list', 'grain', 'grain_pcre', 'pillar', 'pillar_pcre', 'nodegroup', 'range', 'compound', 'ipcidr',
] as const
export type TargetType = (typeof TARGET_TYPES)[number]

export const envSchema = Type.Object({
  HOST: Type.String({ default: '127.0.0.1' }),
  PORT: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
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
  RESERVATIONS_FORMAT: Type.Union(
    FORMAT_NAMES.map((f) => Type.Literal(f)),
    { default: 'hostsfile' },
  ),
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
  DNSMASQ_MINION_TGT_TYPE: Type.Union(
    TARGET_TYPES.map((t) => Type.Literal(t)),
    { default: 'glob' },
  ),
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
