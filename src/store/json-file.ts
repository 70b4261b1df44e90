// Reading saltmasq's own JSON files against their TypeBox schemas (JSON Schema, checked with the
// Ajv that env-schema and Fastify load anyway): a file that does not match is named with the
// first thing wrong, never guessed at.
import { Ajv, type ValidateFunction } from 'ajv'
import type { TSchema } from 'typebox'
import { errors } from '../errors.js'

const ajv = new Ajv({ allErrors: false, strict: false })
const compiled = new WeakMap<TSchema, ValidateFunction>()

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
  let validate = compiled.get(schema)
  if (validate === undefined) compiled.set(schema, validate = ajv.compile(schema))
  if (validate(value)) return null
  const first = validate.errors?.[0]
  if (first === undefined) return 'does not match its schema'
  const where = first.instancePath === '' ? '' : `${first.instancePath}: `
  return `${where}${first.message ?? 'is not valid'}`
}
