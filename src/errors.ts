// Every error saltmasq raises on purpose, made once, with a stable code a caller can branch on
// and a log line can name. 4xx codes describe the caller's mistake; 5xx codes describe ours or
// salt-api's, and their messages never carry a secret.
import createError from '@fastify/error'

export const errors = {
  SALTMASQ_BAD_CONFIG: createError<[string, string]>('SALTMASQ_BAD_CONFIG', '%s: %s', 500),
  SALTMASQ_BAD_MINION_ID: createError<[string, string]>(
    'SALTMASQ_BAD_MINION_ID',
    'minion id \'%s\' is not a valid dnsmasq host name: %s',
    400,
  ),
  SALTMASQ_BAD_TAG: createError<[string]>(
    'SALTMASQ_BAD_TAG',
    'tag \'%s\' is not salt/cloud/<minion id>/created or salt/cloud/<minion id>/destroyed',
    400,
  ),
  SALTMASQ_UNAUTHORIZED: createError('SALTMASQ_UNAUTHORIZED', 'missing or wrong bearer token', 401),
  SALTMASQ_EVENT_FROM_MINION: createError<[string]>('SALTMASQ_EVENT_FROM_MINION', 'refused: %s', 403),
  SALTMASQ_BAD_SIGNATURE: createError<[string]>('SALTMASQ_BAD_SIGNATURE', 'webhook signature refused: %s', 401),
  SALTMASQ_NO_RESERVATION: createError<[string]>('SALTMASQ_NO_RESERVATION', 'no reservation for minion \'%s\'', 404),

  SALTMASQ_SALT_AUTH_FAILED: createError<[number]>(
    'SALTMASQ_SALT_AUTH_FAILED',
    'salt-api refused the login (HTTP '
    + '%d): check SALT_API_USER, SALT_API_PASSWORD, SALT_API_EAUTH and external_auth on the master',
    502,
  ),
  SALTMASQ_SALT_AUTH_PAUSED: createError<[number]>(
    'SALTMASQ_SALT_AUTH_PAUSED',
    'salt-api refused the last login: '
    + 'not trying again for %d s, so that a lockout (pam_faillock) is not triggered; check SALT_API_USER, '
    + 'SALT_API_PASSWORD, SALT_API_EAUTH and external_auth on the master',
    502,
  ),
  SALTMASQ_SALT_FORBIDDEN: createError<[string]>(
    'SALTMASQ_SALT_FORBIDDEN',
    'salt-api refused %s even after a fresh login: give the eauth user that permission in external_auth on the master',
    502,
  ),
  SALTMASQ_SALT_CLIENT_DISABLED: createError<[string]>(
    'SALTMASQ_SALT_CLIENT_DISABLED',
    'salt-api refused the '
    + 'call: %s. Add the client to \'netapi_enable_clients\' in the master config (saltmasq needs [local, runner])',
    502,
  ),
  SALTMASQ_SALT_BAD_REQUEST: createError<[string]>(
    'SALTMASQ_SALT_BAD_REQUEST',
    'salt-api answered 400 Bad Request: %s',
    502,
  ),
  SALTMASQ_SALT_UNAVAILABLE: createError<[number, string]>(
    'SALTMASQ_SALT_UNAVAILABLE',
    'salt-api answered HTTP %d: %s',
    502,
  ),
  SALTMASQ_SALT_UNREACHABLE: createError<[string]>('SALTMASQ_SALT_UNREACHABLE', 'salt-api is unreachable: %s', 502),
  SALTMASQ_SALT_TIMEOUT: createError<[number]>('SALTMASQ_SALT_TIMEOUT', 'salt-api did not answer within %d ms', 504),
  SALTMASQ_SALT_BAD_RESPONSE: createError<[string]>(
    'SALTMASQ_SALT_BAD_RESPONSE',
    'salt-api sent an unexpected body: %s',
    502,
  ),
  SALTMASQ_SALT_SESSION_REFUSED: createError(
    'SALTMASQ_SALT_SESSION_REFUSED',
    'salt-api refused the session for GET /events (401); logging in again',
    502,
  ),
  SALTMASQ_SALT_STREAM_ENDED: createError('SALTMASQ_SALT_STREAM_ENDED', 'salt-api closed the event stream', 502),

  SALTMASQ_APPLY_NO_MINION: createError<[string, string]>(
    'SALTMASQ_APPLY_NO_MINION',
    'no minion matching \'%s\' answered %s: is DNSMASQ_MINION right and the minion up?',
    502,
  ),
  SALTMASQ_APPLY_FAILED: createError<[string, string, string]>('SALTMASQ_APPLY_FAILED', '%s on %s failed: %s', 502),
  SALTMASQ_NO_DNSMASQ_MINION_CURRENT: createError<[string, string]>(
    'SALTMASQ_NO_DNSMASQ_MINION_CURRENT',
    'no dnsmasq minion matching \'%s\' holds the reservations: %s; they are sent again at the next sync',
    502,
  ),
  SALTMASQ_DNSMASQ_CHECK_FAILED: createError<[string, string]>(
    'SALTMASQ_DNSMASQ_CHECK_FAILED',
    'dnsmasq rejected the new reservations (%s), so the previous file was restored and dnsmasq was not restarted: %s',
    502,
  ),
  SALTMASQ_RENDER_REFUSED: createError<[string]>(
    'SALTMASQ_RENDER_REFUSED',
    'refusing to write a line dnsmasq would reject: %s',
    500,
  ),
  SALTMASQ_STATE_CORRUPT: createError<[string, string]>(
    'SALTMASQ_STATE_CORRUPT',
    'state file %s is unreadable: %s',
    500,
  ),
  SALTMASQ_FILE_WRITE_FAILED: createError<[string, string]>('SALTMASQ_FILE_WRITE_FAILED', 'cannot write %s: %s', 500),
  SALTMASQ_FILE_READ_FAILED: createError<[string, string]>('SALTMASQ_FILE_READ_FAILED', 'cannot read %s: %s', 500),
} as const

/** salt-api answered with a status that says "try again" (or did not answer at all). */
export function isTransientSaltError(err: unknown): boolean {
  const e = err as { code?: string, upstreamStatus?: number }
  if (e.code === 'SALTMASQ_SALT_UNREACHABLE' || e.code === 'SALTMASQ_SALT_TIMEOUT') return true
  return e.code === 'SALTMASQ_SALT_UNAVAILABLE' && [502, 503, 504].includes(e.upstreamStatus ?? 0)
}
