// Process entry (`npm start`): reads ./.env (or SALTMASQ_ENV_FILE) under the real environment,
// checks the configuration, builds the app, listens, runs a first sync, and shuts down
// gracefully. A setting that stops start-up is said in one line a person reads, on stderr; the
// JSON log carries the detail.
import { setFlagsFromString } from 'node:v8'
import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { buildApp } from './app.js'
import { loadConfig, type Config } from './config/index.js'
import { loggerOptions } from './logger.js'
import { describeConfigError, helpText } from './start/config-errors.js'
import { loadEnv } from './start/env-file.js'
import { variableForPath } from './start/paths.js'
import { saltmasqVersion } from './util/version.js'

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(helpText())
  process.exit(0)
}

// The level is only known once the configuration is: errors before that are logged at info.
const logger = pino(loggerOptions('info'))

function cannotStart(lines: string[], detail: Record<string, unknown> = {}): never {
  for (const line of lines) process.stderr.write(`saltmasq cannot start: ${line}\n`)
  logger.fatal({ problems: lines, ...detail }, 'saltmasq cannot start')
  process.exit(1)
}

let env: Record<string, string | undefined>
let envFile: string | null
try {
  ;({ env, file: envFile } = await loadEnv(process.env, process.cwd()))
} catch (err) {
  cannotStart([(err as Error).message])
}

let config: Config
try {
  config = loadConfig(env)
} catch (err) {
  cannotStart(describeConfigError(err, env), { code: (err as { code?: string }).code })
}
logger.level = config.logLevel
// Bounds V8's heap growth between full GCs: at 50,000 reservations the default let ~60 MB live
// become ~300 MB of heap (docs/performance.md). V8 reads the flag each time, so it can be set now.
if (config.heapGrowthPercent > 0) setFlagsFromString(`--heap-growing-percent=${config.heapGrowthPercent}`)

let app: Awaited<ReturnType<typeof buildApp>>
try {
  app = await buildApp({ config, logger })
} catch (err) {
  const e = err as { code?: string, path?: string, message: string }
  const variable = e.path === undefined ? null : variableForPath(e.path, config)
  cannotStart([variable === null ? e.message : `${variable}: ${e.message}`], {
    code: e.code,
    err: e.code?.startsWith('SALTMASQ_') === true ? undefined : err,
  })
}

closeWithGrace({ delay: 15_000, logger }, async ({ err, signal }) => {
  if (err !== undefined) logger.error({ err }, 'closing after an unexpected error')
  else logger.info({ signal }, 'shutting down: finishing the sync in flight')
  await app.close()
})

const { host, port } = config
try {
  await app.listen({ host, port })
} catch (err) {
  cannotStart([
    `HOST=${host} PORT=${port}: cannot listen: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
  ])
}

const version = await saltmasqVersion()
const files =
  config.format === 'conf'
    ? { RESERVATIONS_FILE: config.files.conf }
    : config.format === 'hostsfile'
      ? { DHCP_HOSTSFILE: config.files.dhcpHosts, ADDN_HOSTS_FILE: config.files.addnHosts }
      : { DHCP_HOSTSDIR: config.files.dhcpHostsDir, DNS_HOSTSDIR: config.files.dnsHostsDir }
logger.info(
  {
    version,
    envFile,
    format: config.format,
    files: { ...files, STATE_FILE: config.files.state },
    saltApi: config.salt.url,
    dnsmasqMinion: config.dnsmasq.minion,
    eventSources: [...(config.events.stream ? ['salt-api event stream'] : []), 'webhook POST /hooks/salt'],
    keyGoneAfterS: config.keyGoneAfterMs / 1000,
  },
  `saltmasq ${version} started`,
)
// Nothing waits for the first event: what the mine has now is reserved now.
app.saltmasq.scheduler.sync().catch(() => undefined)
