// Deltas between two versions of a file: applying them gives the new version exactly, in every
// shape of change; they give up (null) where sending the file whole is cheaper.
import t from 'tap'
import { applyHunks, lineDelta, splitLines } from '../../src/dnsmasq/line-delta.js'

function seeded(seed: number): () => number {
  let x = seed
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31
    return x / 2 ** 31
  }
}

t.test('random additions, removals and changes round-trip through the hunks', async (t) => {
  const random = seeded(42)
  for (let round = 0; round < 300; round++) {
    const base = Array.from({ length: Math.floor(random() * 60) }, (_, i) => `line-${i}`)
    const next = [...base]
    for (let e = Math.floor(random() * 8); e > 0; e--) {
      const at = Math.floor(random() * (next.length + 1))
      const kind = random()
      if (kind < 0.4) next.splice(at, 0, `new-${round}-${e}`)
      else if (kind < 0.7) next.splice(at, 1)
      else next.splice(at, 1, `changed-${round}-${e}`)
    }
    const hunks = lineDelta(base, next, 1000)
    if (hunks === null) throw new Error('gave up')
    t.same(applyHunks(base, hunks), next, `round ${round}`)
    for (let i = 1; i < hunks.length; i++) if (hunks[i - 1]![0] + hunks[i - 1]![1] >= hunks[i]![0] + (hunks[i - 1]![1] === 0 ? 1 : 0)) t.fail(`hunks ${i - 1} and ${i} touch: ${JSON.stringify(hunks)}`)
  }
})

t.test('one line added to a large file is one hunk of one line; a rewrite gives up', async (t) => {
  const base = Array.from({ length: 50_000 }, (_, i) => `52:54:00:00:${i},10.0.${i >> 8}.${i & 255},vm${i}`)
  const next = [...base.slice(0, 25_000), 'aa:bb:cc:dd:ee:ff,10.9.9.9,newcomer', ...base.slice(25_000)]
  t.same(lineDelta(base, next, 2000), [[25_000, 0, ['aa:bb:cc:dd:ee:ff,10.9.9.9,newcomer']]])
  t.same(lineDelta(base, base, 2000), [])
  t.equal(lineDelta(base, base.map((l) => `${l}.changed`), 2000), null)
  t.same(lineDelta([], ['a', 'b'], 10), [[0, 0, ['a', 'b']]])
  t.same(lineDelta(['a', 'b'], [], 10), [[0, 2, []]])
})

t.test('a file is its lines, each ending in a newline', async (t) => {
  t.same(splitLines(''), [])
  t.same(splitLines('a\nb\n'), ['a', 'b'])
  t.same(splitLines('a\n\nb\n'), ['a', '', 'b'])
})
