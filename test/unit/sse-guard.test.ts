import t from 'tap'
import { SseGuard } from '../../src/events/sse-guard.js'

function run(chunks: string[], max: number): { records: string[], dropped: number } {
  const guard = new SseGuard(max)
  let held = ''
  const records: string[] = []
  for (const chunk of chunks) {
    guard.push(chunk, {
      feed: (text) => {
        held += text
        let i
        while ((i = held.indexOf('\n\n')) !== -1) {
          records.push(held.slice(0, i))
          held = held.slice(i + 2)
        }
      },
      reset: () => { held = '' },
    })
  }
  return { records, dropped: guard.dropped }
}

t.test('records come out the same however the stream is cut; CRs never end a line', async (t) => {
  const stream = 'tag: a\ndata: 1\n\ntag: b\rdata: 2\r\r\ndata: x\n\ntag: c\ndata: 3\n\n'
  const whole = run([stream], 1000)
  t.same(whole.records, ['tag: a\ndata: 1', 'tag: b\uFFFDdata: 2\uFFFD\uFFFD\ndata: x', 'tag: c\ndata: 3'])
  for (let cut = 1; cut < stream.length; cut++) {
    t.same(run([stream.slice(0, cut), stream.slice(cut)], 1000).records, whole.records, `cut at ${cut}`)
  }
  const bytes = run(stream.split(''), 1000)
  t.same(bytes.records, whole.records, 'one character at a time')
})

t.test('a record over the bound is cut out whole, the records around it kept', async (t) => {
  const big = `tag: big\ndata: ${'x'.repeat(500)}\n\n`
  const stream = `tag: a\ndata: 1\n\n${big}tag: c\ndata: 3\n\n`
  for (const size of [1, 7, 64, 1000]) {
    const chunks: string[] = []
    for (let i = 0; i < stream.length; i += size) chunks.push(stream.slice(i, i + size))
    const out = run(chunks, 100)
    t.same(out.records, ['tag: a\ndata: 1', 'tag: c\ndata: 3'], `chunks of ${size}`)
    t.equal(out.dropped, 1)
  }
})
