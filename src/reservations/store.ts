// Files on disk: the durable ledger (STATE_FILE) and the dnsmasq files. Every write goes
// temp file in the same directory → fsync → rename → fsync(directory), so a crash at any moment
// leaves either the complete old file or the complete new one, and dnsmasq never reads half a file.
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { errors } from '../errors.js'
import type { Ledger, Reservation } from './ledger.js'
import { canonicalIp, canonicalMac, minionIdProblem } from './validate.js'

export async function readIfExists (path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

/**
 * Replaces `path` with `content` through a synced temporary and a rename, without syncing the
 * directory: a caller writing many files syncs it once (`syncDirectory`). A leading dot keeps
 * the half-written temporary out of directories dnsmasq watches.
 */
export async function replaceFile (path: string, content: string): Promise<void> {
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
    await rm(temp, { force: true })
    throw err
  }
}

/** Makes the renames and removals in `dir` durable. */
export async function syncDirectory (dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

export async function writeFileAtomic (path: string, content: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  await replaceFile(path, content)
  await syncDirectory(dirname(path))
}

export interface WriteOutcome {
  changed: boolean
  /** The content before the write, so a caller can put it back; null when there was no file. */
  previous: string | null
}

export async function writeIfChanged (path: string, content: string): Promise<WriteOutcome> {
  const previous = await readIfExists(path)
  if (previous === content) return { changed: false, previous }
  await writeFileAtomic(path, content)
  return { changed: true, previous }
}

/** Puts back what `writeIfChanged` replaced: the old content, or no file at all. */
export async function restore (path: string, outcome: WriteOutcome): Promise<void> {
  if (!outcome.changed) return
  if (outcome.previous === null) await rm(path, { force: true })
  else await writeFileAtomic(path, outcome.previous)
}

interface StateFileV1 {
  version: 1
  reservations: Reservation[]
}

function isReservation (value: unknown): value is Reservation {
  if (typeof value !== 'object' || value === null) return false
  const r = value as Record<string, unknown>
  return typeof r.minionId === 'string' && minionIdProblem(r.minionId) === null &&
    typeof r.ip === 'string' && canonicalIp(r.ip) === r.ip &&
    (r.mac === undefined || (typeof r.mac === 'string' && canonicalMac(r.mac) === r.mac)) &&
    typeof r.firstSeen === 'string' && typeof r.lastSeen === 'string' &&
    (r.staleSince === undefined || typeof r.staleSince === 'string')
}

export function serializeLedger (ledger: Ledger): string {
  const state: StateFileV1 = { version: 1, reservations: [...ledger.values()] }
  return `${JSON.stringify(state, null, 1)}\n`
}

/** The ledger saved in `path`, or null when there is no state file yet. A damaged file stops us: guessing could lose reservations. */
export async function loadLedger (path: string): Promise<Ledger | null> {
  const text = await readIfExists(path)
  if (text === null) return null
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new errors.StateCorrupt(path, (err as Error).message)
  }
  const state = parsed as Partial<StateFileV1>
  if (state.version !== 1 || !Array.isArray(state.reservations)) {
    throw new errors.StateCorrupt(path, 'expected {"version": 1, "reservations": [...]}')
  }
  const ledger = new Map<string, Reservation>()
  for (const entry of state.reservations) {
    if (!isReservation(entry)) throw new errors.StateCorrupt(path, `bad reservation ${JSON.stringify(entry)}`)
    ledger.set(entry.minionId, entry)
  }
  return ledger
}
