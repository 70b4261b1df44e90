// Where the repository and its Salt virtualenv are, whether this runs from test/ or dist/test/.
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json')) || existsSync(join(dir, 'harness'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('cannot find the repository root')
    dir = parent
  }
  return dir
}

export const repoRoot = findRepoRoot()
export const venvBin = join(process.env.SALTMASQ_VENV ?? join(repoRoot, '.venv'), 'bin')
export const saltFiles = join(repoRoot, 'salt')
export const labScripts = join(repoRoot, 'lab', 'scripts')
