// Reading saltmasq's own JSON files against their TypeBox schemas: a file that does not match
// is named with the first thing wrong, never guessed at.
import type { TSchema } from 'typebox'
import { Value } from 'typebox/value'
import { errors } from '../errors.js'

/** The parsed JSON in `text`, or SALTMASQ_STATE_CORRUPT naming `path`. */
export function parseJson(path: string, text: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new errors.SALTMASQ_STATE_CORRUPT(path, (err as Error).message)
  }
}

/** Why `value` does not match `schema` (the first error, with where), or null when it does. */
export function schemaProblem(schema: TSchema, value: unknown): string | null {
  if (Value.Check(schema, value)) return null
  const first = Value.Errors(schema, value)[0]
  if (first === undefined) return 'does not match its schema'
  const where = first.instancePath === '' ? '' : `${first.instancePath}: `
  return `${where}${first.message}`
}
