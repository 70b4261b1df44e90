// saltmasq's version, from package.json: two folders up from the sources, three from dist/.
import { readFile } from 'node:fs/promises'

let cached: Promise<string> | undefined

async function read(): Promise<string> {
  for (const candidate of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(await readFile(new URL(candidate, import.meta.url), 'utf8')) as {
        name?: string
        version?: string
      }
      if (pkg.name === 'saltmasq' && typeof pkg.version === 'string') return pkg.version
    } catch {
      // not there from this folder: try the next
    }
  }
  return 'unknown'
}

export async function saltmasqVersion(): Promise<string> {
  cached ??= read()
  return await cached
}
