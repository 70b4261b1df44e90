// The environment file `npm start` reads: ./.env, or the file SALTMASQ_ENV_FILE names. Parsed
// with Node's own dotenv parser (quoted JSON values survive, unlike `set -a; . ./.env`); a
// variable already in the real environment wins over the file.
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { parseEnv } from 'node:util'

export interface LoadedEnv {
  env: Record<string, string | undefined>
  /** The file read, or null when there was none (only an explicitly named file must exist). */
  file: string | null
}

export async function loadEnv(real: NodeJS.ProcessEnv, cwd: string): Promise<LoadedEnv> {
  const named = real.SALTMASQ_ENV_FILE
  const path = resolve(cwd, named ?? '.env')
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && named === undefined) return { env: { ...real }, file: null }
    throw new Error(`SALTMASQ_ENV_FILE=${JSON.stringify(named ?? path)} cannot be read: ${(err as Error).message}`)
  }
  return { env: { ...parseEnv(text), ...real }, file: path }
}
