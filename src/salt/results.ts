// Reading what a Salt function returned through the local client. Salt reports most failures
// inside a 200 answer, as a value rather than a status, so these checks decide success. Pure.

const FAILURE_PREFIXES = [
  'ERROR',
  'The minion function caused an exception',
  'Passed invalid arguments',
  'Minion did not return',
]

/** Why a function's return value means it failed, or null when it succeeded. */
export function localFailure (value: unknown): string | null {
  if (value === false) return 'it returned False'
  if (typeof value === 'string') {
    if (FAILURE_PREFIXES.some((p) => value.startsWith(p)) || / is not available\.?$/.test(value)) return value.slice(0, 500)
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
