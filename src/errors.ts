// Every error saltmasq raises on purpose, made once, with a stable code a caller can branch on
// and a log line can name. 4xx codes describe the caller's mistake; 5xx codes describe ours or
// salt-api's, and their messages never carry a secret.
import createError from '@fastify/error'

export const errors = {
  BadConfig: createError<[string, string]>('SALTMASQ_BAD_CONFIG', '%s: %s', 500),
  BadMinionId: createError<[string, string]>('SALTMASQ_BAD_MINION_ID', 'minion id \'%s\' is not a valid dnsmasq host name: %s', 400),
  BadTag: createError<[string]>('SALTMASQ_BAD_TAG', 'tag \'%s\' is not salt/cloud/<minion id>/created or salt/cloud/<minion id>/destroyed', 400),
  Unauthorized: createError('SALTMASQ_UNAUTHORIZED', 'missing or wrong bearer token', 401),
  EventFromMinion: createError<[string]>('SALTMASQ_EVENT_FROM_MINION', 'refused: %s', 403),
  BadSignature: createError<[string]>('SALTMASQ_BAD_SIGNATURE', 'webhook signature refused: %s', 401),
  NotFound: createError<[string]>('SALTMASQ_NO_RESERVATION', 'no reservation for minion \'%s\'', 404),

  SaltAuthFailed: createError<[number]>('SALTMASQ_SALT_AUTH_FAILED', 'salt-api refused the login (HTTP %d): check SALT_API_USER, SALT_API_PASSWORD, SALT_API_EAUTH and external_auth on the master', 502),
  SaltAuthPaused: createError<[number]>('SALTMASQ_SALT_AUTH_FAILED', 'salt-api refused the last login: not trying again for %d s, so that a lockout (pam_faillock) is not triggered; check SALT_API_USER, SALT_API_PASSWORD, SALT_API_EAUTH and external_auth on the master', 502),
  SaltForbidden: createError<[string]>('SALTMASQ_SALT_FORBIDDEN', 'salt-api refused %s even after a fresh login: give the eauth user that permission in external_auth on the master', 502),
  SaltClientDisabled: createError<[string]>('SALTMASQ_SALT_CLIENT_DISABLED', 'salt-api refused the call: %s. Add the client to \'netapi_enable_clients\' in the master config (saltmasq needs [local, runner])', 502),
  SaltBadRequest: createError<[string]>('SALTMASQ_SALT_BAD_REQUEST', 'salt-api answered 400 Bad Request: %s', 502),
  SaltUnavailable: createError<[number, string]>('SALTMASQ_SALT_UNAVAILABLE', 'salt-api answered HTTP %d: %s', 502),
  SaltUnreachable: createError<[string]>('SALTMASQ_SALT_UNREACHABLE', 'salt-api is unreachable: %s', 502),
  SaltTimeout: createError<[number]>('SALTMASQ_SALT_TIMEOUT', 'salt-api did not answer within %d ms', 504),
  SaltBadResponse: createError<[string]>('SALTMASQ_SALT_BAD_RESPONSE', 'salt-api sent an unexpected body: %s', 502),

  ApplyNoMinion: createError<[string, string]>('SALTMASQ_APPLY_NO_MINION', 'no minion matching \'%s\' answered %s: is DNSMASQ_MINION right and the minion up?', 502),
  ApplyFailed: createError<[string, string, string]>('SALTMASQ_APPLY_FAILED', '%s on %s failed: %s', 502),
  NoMinionCurrent: createError<[string, string]>('SALTMASQ_NO_DNSMASQ_MINION_CURRENT', 'no dnsmasq minion matching \'%s\' holds the reservations: %s; they are sent again at the next sync', 502),
  CheckFailed: createError<[string, string]>('SALTMASQ_DNSMASQ_CHECK_FAILED', 'dnsmasq rejected the new reservations (%s), so the previous file was restored and dnsmasq was not restarted: %s', 502),
  RenderRefused: createError<[string]>('SALTMASQ_RENDER_REFUSED', 'refusing to write a line dnsmasq would reject: %s', 500),
  StateCorrupt: createError<[string, string]>('SALTMASQ_STATE_CORRUPT', 'state file %s is unreadable: %s', 500),
  FileWriteFailed: createError<[string, string]>('SALTMASQ_FILE_WRITE_FAILED', 'cannot write %s: %s', 500),
  FileReadFailed: createError<[string, string]>('SALTMASQ_FILE_READ_FAILED', 'cannot read %s: %s', 500),
} as const

/** salt-api answered with a status that says "try again" (or did not answer at all). */
export function isTransientSaltError(err: unknown): boolean {
  const e = err as { code?: string, upstreamStatus?: number }
  if (e.code === 'SALTMASQ_SALT_UNREACHABLE' || e.code === 'SALTMASQ_SALT_TIMEOUT') return true
  return e.code === 'SALTMASQ_SALT_UNAVAILABLE' && [502, 503, 504].includes(e.upstreamStatus ?? 0)
}
