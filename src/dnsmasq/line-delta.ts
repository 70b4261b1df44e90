// A file's new content as the edits that turn the content a dnsmasq minion already holds into
// it, so a sync that adds one machine at 50k reservations sends one line, not the 2–3 MB file.
// Pure. The minion (saltmasq.publish) applies the hunks and checks the result's hash, so a
// wrong delta is refused there rather than written.
import { createHash } from 'node:crypto'
import { diffArrays } from 'diff'
import { splitLines } from './lines.js'

export { splitLines }

/** `[start, delete, insert]`: replace `delete` lines at `start` (in the base's lines) with `insert`. */
export type Hunk = [number, number, string[]]

export function sha256(content: string): string {
  return createHash('sha256').update(content, 'utf8').digest('hex')
}

/**
 * The hunks that make `base` into `next`, in order and apart; null when they would take more
 * than `maxEdits` changed lines or `timeoutMs` to work out (the whole file is then the
 * smaller, or the quicker, thing to send).
 */
export function lineDelta(
  base: readonly string[],
  next: readonly string[],
  maxEdits: number,
  timeoutMs = 250,
): Hunk[] | null {
  // What both share at the start and the end is left out first: most syncs change a few lines.
  let head = 0
  while (head < base.length && head < next.length && base[head] === next[head]) head++
  let tail = 0
  while (
    tail < base.length - head
    && tail < next.length - head
    && base[base.length - 1 - tail] === next[next.length - 1 - tail]
  )
    tail++
  const from = base.slice(head, base.length - tail)
  const to = next.slice(head, next.length - tail)
  // Counted in one pass before diffing (the files' lines are unique): a diff that would give up
  // anyway costs far more than this to find out.
  const had = new Set(from)
  const added = to.reduce((n, line) => (had.has(line) ? n : n + 1), 0)
  if (added + Math.max(0, from.length - (to.length - added)) > maxEdits) return null
  const parts = diffArrays(from, to, { maxEditLength: maxEdits, timeout: timeoutMs })
  if (parts === undefined) return null
  const hunks: Hunk[] = []
  let at = head
  let open: Hunk | null = null
  for (const part of parts) {
    if (!part.added && !part.removed) {
      at += part.count
      open = null
      continue
    }
    if (open === null) {
      open = [at, 0, []]
      hunks.push(open)
    }
    if (part.removed) {
      open[1] += part.count
      at += part.count
    } else {
      open[2].push(...part.value)
    }
  }
  return hunks
}

/** What the module does with the hunks: kept here so the tests hold both sides to one meaning. */
export function applyHunks(base: readonly string[], hunks: readonly Hunk[]): string[] {
  const lines = [...base]
  for (const [start, remove, insert] of [...hunks].reverse()) lines.splice(start, remove, ...insert)
  return lines
}
