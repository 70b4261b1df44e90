// What stands between salt-api's GET /events bytes and the SSE parser. rest_cherrypy writes a
// minion's tag into `tag: <tag>\n` unescaped, so no byte a minion controls may make a record
// boundary or a line: a lone CR (a line end to any SSE parser) is neutralised here, and a
// record longer than the bound is cut out whole, so the parser never buffers without limit.
// Pure: no I/O.

/** A record (everything up to a blank line) longer than this is dropped. */
export const MAX_RECORD_CHARS = 1024 * 1024

/** Where guarded text goes: the parser's feed, and its reset for a record cut out. */
export interface GuardSink {
  feed: (text: string) => void
  reset: () => void
}

export class SseGuard {
  readonly #max: number
  /** Characters of the record in progress, fed already. */
  #size = 0
  #skipping = false
  #endedWithNewline = false
  /** Records dropped for their size. */
  dropped = 0

  constructor(maxRecordChars = MAX_RECORD_CHARS) {
    this.#max = maxRecordChars
  }

  push(raw: string, sink: GuardSink): void {
    // JSON never holds a raw CR: one on the stream came from a minion's tag.
    const chunk = raw.includes('\r') ? raw.replaceAll('\r', '\uFFFD') : raw
    let pending = ''
    let pos = 0
    while (pos < chunk.length) {
      const end = this.#endedWithNewline && pos === 0 && chunk[0] === '\n' ? 1 : boundaryEnd(chunk, pos)
      const piece = end === -1 ? chunk.slice(pos) : chunk.slice(pos, end)
      if (this.#skipping) {
        if (end !== -1) this.#skipping = false
      } else if (this.#size + piece.length > this.#max) {
        // Cut this record out: what of it the parser already holds goes with a reset.
        this.dropped++
        if (pending !== '') sink.feed(pending)
        pending = ''
        sink.reset()
        this.#size = 0
        this.#skipping = end === -1
      } else {
        pending += piece
        this.#size = end === -1 ? this.#size + piece.length : 0
      }
      pos = end === -1 ? chunk.length : end
    }
    this.#endedWithNewline = chunk.endsWith('\n')
    if (pending !== '') sink.feed(pending)
  }
}

/** The index just past the next blank line from `pos`, or -1. */
function boundaryEnd(chunk: string, pos: number): number {
  const i = chunk.indexOf('\n\n', pos)
  return i === -1 ? -1 : i + 2
}
