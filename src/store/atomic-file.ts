// Crash-safe file I/O, the one write path for every file saltmasq writes. Every write goes
// temp file in the same directory → fsync → rename → fsync(directory), so a crash at any moment
// leaves either the complete old file or the complete new one, and dnsmasq never reads half a file.
import { randomBytes } from 'node:crypto'
import type { Dirent } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { errors } from '../errors.js'

/** A failed file operation as a coded error naming the file and the cause (disk full, read-only, no permission...). */
function fileError(err: unknown, path: string, doing: 'read' | 'write'): Error {
  const e = err as NodeJS.ErrnoException
  if (typeof e.code === 'string' && e.code.startsWith('SALTMASQ_')) return e
  const cause =
    e.code === undefined ? e.message : `${e.code} (${e.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '')})`
  return Object.assign(
    doing === 'read'
      ? new errors.SALTMASQ_FILE_READ_FAILED(path, cause)
      : new errors.SALTMASQ_FILE_WRITE_FAILED(path, cause),
    { path, errno: e.code },
  )
}

export async function readIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw fileError(err, path, 'read')
  }
}

/**
 * Replaces `path` with `content` through a synced temporary and a rename, without syncing the
 * directory: a caller writing many files syncs it once (`syncDirectory`). A leading dot keeps
 * the half-written temporary out of directories dnsmasq watches.
 */
export async function replaceFile(path: string, content: string): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    const handle = await open(temp, 'w', 0o644)
    try {
      await handle.writeFile(content, 'utf8')
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, path)
  } catch (err) {
    await rm(temp, { force: true }).catch(() => undefined)
    throw fileError(err, path, 'write')
  }
}

/** Makes the renames and removals in `dir` durable. */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch (err) {
    throw fileError(err, dir, 'write')
  }
}

/** The entries of `dir`. */
export async function listDirectory(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true })
  } catch (err) {
    throw fileError(err, dir, 'read')
  }
}

/** Creates `dir` (and its parents) if missing. */
export async function ensureDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true })
  } catch (err) {
    throw fileError(err, dir, 'write')
  }
}

export async function writeFileAtomic(path: string, content: string): Promise<void> {
  await ensureDirectory(dirname(path))
  await replaceFile(path, content)
  await syncDirectory(dirname(path))
}

/** Puts back what a write replaced: the old content, or no file at all. */
export async function restore(path: string, previous: string | null): Promise<void> {
  if (previous === null) await removeFile(path)
  else await writeFileAtomic(path, previous)
}

/** Removes `path`; a file already gone is fine. */
export async function removeFile(path: string): Promise<void> {
  try {
    await rm(path, { force: true })
  } catch (err) {
    throw fileError(err, path, 'write')
  }
}
