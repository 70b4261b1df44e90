// Turns the bytes of salt-api's event stream into records a caller can trust to be one event each:
// the guard neutralises CRs and cuts out oversized records, the SSE parser splits the rest, and
// checkRecord refuses any record whose tag line and JSON tag do not add up to one event.
import { createParser, type ParseError } from 'eventsource-parser'
import { MAX_RECORD_CHARS, SseGuard } from './sse-guard.js'

/** One SSE record: rest_cherrypy's `tag:` lines (not a standard field) and its data. */
export interface StreamRecord {
  tag: string | null
  tagLines: number
  data: string
}

/** C0 controls, DEL, and the mark the guard leaves for a CR. */
const CONTROL = /[\u0000-\u001f\u007f\ufffd]/ // eslint-disable-line no-control-regex

/**
 * The event's data when the record is one event; `why` it is refused when its bytes were forged
 * (a LF in a tag can make a data line whose JSON swallows the real one); `why: null` when the
 * data is not JSON at all (dropped without a word: Salt never sends that).
 */
export function checkRecord(tag: string, tagLines: number, text: string): { data: unknown } | { why: string | null } {
  if (tagLines !== 1) return { why: `${tagLines} tag lines in one record` }
  // Salt's JSON never holds a raw line end: a second data line was made by a tag's bytes.
  if (text.includes('\n')) return { why: 'several data lines in one record' }
  if (CONTROL.test(tag)) return { why: 'a control character in the tag' }
  let parsed: { tag?: unknown, data?: unknown }
  try {
    parsed = JSON.parse(text) as { tag?: unknown, data?: unknown }
  } catch {
    return { why: null }
  }
  if (parsed.tag !== tag) return { why: 'the tag line and the JSON tag differ' }
  return { data: parsed.data }
}

export class RecordReader {
  readonly #guard = new SseGuard()
  readonly #sink: { feed: (text: string) => void, reset: () => void }
  readonly #decoder = new TextDecoder()

  /** `onRecord` gets every record; `onCut` each one cut out for its size. */
  constructor(onRecord: (record: StreamRecord) => void, onCut: () => void) {
    let tag: string | null = null
    let tagLines = 0
    const parser = createParser({
      // A backstop: the guard already cuts out records over the bound.
      maxBufferSize: MAX_RECORD_CHARS * 2,
      // `tag:` is not a standard SSE field: the parser reports it as unknown, before the data.
      onError: (err: ParseError) => {
        if (err.type === 'unknown-field' && err.field === 'tag') {
          tag = err.value ?? null
          tagLines++
        }
      },
      onEvent: (event) => {
        const record = { tag, tagLines, data: event.data }
        tag = null
        tagLines = 0
        onRecord(record)
      },
    })
    this.#sink = {
      feed: (text) => {
        parser.feed(text)
      },
      reset: () => {
        parser.reset()
        tag = null
        tagLines = 0
        onCut()
      },
    }
  }

  /** Feeds one chunk of the body; a multi-byte character may be split between chunks. */
  push(chunk: Uint8Array): void {
    this.#guard.push(this.#decoder.decode(chunk, { stream: true }), this.#sink)
  }
}
