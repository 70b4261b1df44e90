// The one pino configuration. Secrets are redacted wherever they could appear in a log object.
import type { LoggerOptions } from 'pino'

export const REDACTED_PATHS = [
  'req.headers.authorization', 'req.headers["x-auth-token"]', 'headers.authorization', 'headers["x-auth-token"]',
  'password', 'token', '*.password', '*.token', '*.SALT_API_PASSWORD', '*.WEBHOOK_TOKEN', '*.WEBHOOK_HMAC_SECRET',
  '*.METRICS_TOKEN',
]

export function loggerOptions(level = 'info'): LoggerOptions {
  return {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  }
}
