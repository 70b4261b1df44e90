// Start-up errors a person reads: one line per bad setting, naming the variable, the value it
// has and what is allowed. The JSON log keeps the detail. Pure.
import { envSchema } from '../config/index.js'

interface AjvError {
  instancePath: string
  keyword: string
  params: Record<string, unknown>
  message?: string
}

type PropertySchema = {
  type?: string
  anyOf?: Array<{ const?: unknown }>
  pattern?: string
  minimum?: number
  maximum?: number
  minLength?: number
  default?: unknown
}

function propertyOf(name: string): PropertySchema | undefined {
  return (envSchema.properties as Record<string, PropertySchema>)[name]
}

/** What a variable may hold, in words. */
export function allowed(name: string): string {
  const p = propertyOf(name)
  if (p === undefined) return 'see .env.example'
  if (p.anyOf !== undefined) return `one of ${p.anyOf.map((a) => String(a.const)).join(', ')}`
  if (p.type === 'integer') {
    const range =
      p.minimum !== undefined && p.maximum !== undefined
        ? ` from ${p.minimum} to ${p.maximum}`
        : p.minimum !== undefined
          ? ` of at least ${p.minimum}`
          : ''
    return `a whole number${range}`
  }
  if (p.type === 'boolean') return 'true or false'
  if (p.pattern !== undefined) return `a value matching ${p.pattern}`
  if (p.minLength !== undefined && p.minLength > 1) return `at least ${p.minLength} characters`
  return 'a non-empty value'
}

/**
 * The lines for a configuration error: the schema validator's (one per variable, the first
 * problem each) or saltmasq's own BadConfig (already "VARIABLE: what is wrong").
 */
export function describeConfigError(err: unknown, env: Record<string, string | undefined>): string[] {
  const e = err as { errors?: AjvError[], code?: string, message?: string }
  if (Array.isArray(e.errors)) {
    const lines = new Map<string, string>()
    for (const a of e.errors) {
      const name =
        a.keyword === 'required' ? String(a.params.missingProperty) : a.instancePath.replace(/^\//, '').split('/')[0]!
      if (name === '' || lines.has(name)) continue
      if (a.keyword === 'required') {
        lines.set(name, `${name} is required: ${allowed(name)}`)
      } else {
        const value = env[name]
        // Secrets are never echoed back.
        const shown = /PASSWORD|TOKEN|SECRET/.test(name) ? `(${value?.length ?? 0} characters)` : JSON.stringify(value)
        lines.set(name, `${name}=${shown} is not allowed: ${allowed(name)}`)
      }
    }
    if (lines.size > 0) return [...lines.values()]
  }
  return [e.message ?? String(err)]
}

/** `--help`: every variable, its default or that it is required, and what it may hold. */
export function helpText(): string {
  const required = new Set((envSchema as { required?: string[] }).required ?? [])
  const rows = Object.keys(envSchema.properties).map((name) => {
    const p = propertyOf(name)!
    const dflt =
      p.default !== undefined ? `default ${JSON.stringify(p.default)}` : required.has(name) ? 'required' : 'optional'
    return `  ${name.padEnd(26)} ${dflt.padEnd(44)} ${allowed(name)}`
  })
  return [
    'saltmasq: predictable IPs and resolvable names for a Salt fleet, published to dnsmasq.',
    '',
    'usage: saltmasq [--help]   (npm start)',
    '',
    'Configuration is environment variables; a file of them is read from ./.env, or from the',
    'file SALTMASQ_ENV_FILE names (variables already in the environment win). .env.example',
    'describes each one.',
    '',
    ...rows,
    '',
  ].join('\n')
}
