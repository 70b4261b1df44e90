// The folder tree reads as the data path, and imports only point down it: events come in
// (http/), the sync side decides and runs (sync/), reading Salt (salt/) and applying the
// ledger's rules (ledger/), publishing to dnsmasq (dnsmasq/), saving what it keeps (store/).
// Read from the sources, so a new import that points back up the path fails here.
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import t from 'tap'
import { repoRoot } from '../../lab/paths.js'

/** Top to bottom. A room may import only rooms below it. */
const PATH_DOWN = [
  ['server.ts'], // the process entry
  ['start'], // the process entry's helpers: the env file, start-up errors, --help
  ['app.ts'], // wires the rooms below
  ['http'],
  ['metrics'], // counts what the rooms below do
  ['events'],
  ['sync'],
  ['dnsmasq'],
  ['config'],
  ['store'], // everything saltmasq saves, in the shapes of the rooms below
  ['salt'],
  ['ledger'],
  ['errors.ts', 'logger.ts', 'util', 'http/schemas.ts'], // leaves every room may use (the API's shapes among them)
]
const rank = new Map(PATH_DOWN.flatMap((rooms, i) => rooms.map((room) => [room, i] as const)))
const src = join(repoRoot, 'src')

async function sources(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...(await sources(join(dir, e.name))))
    else if (e.name.endsWith('.ts')) out.push(join(dir, e.name))
  }
  return out
}

/** A source file's room: its first folder under src/, or the file at the top (the API's shapes are a room). */
function roomOf(file: string): string {
  const path = relative(src, file)
  return path === 'http/schemas.ts' ? path : path.split('/')[0]!
}

t.test('every room of src/ has its place on the data path', async (t) => {
  const rooms = new Set((await sources(src)).map(roomOf))
  for (const room of rooms) t.ok(rank.has(room), `${room} is placed in PATH_DOWN`)
})

t.test('no import points back up the data path, so no two rooms depend on each other', async (t) => {
  const upward: string[] = []
  for (const file of await sources(src)) {
    const text = await readFile(file, 'utf8')
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const target = resolve(dirname(file), m[1]!).replace(/\.js$/, '.ts')
      const [from, to] = [roomOf(file), roomOf(target)]
      if (from !== to && rank.get(from)! >= rank.get(to)!)
        upward.push(`${relative(src, file)} → ${relative(src, target)}`)
    }
  }
  t.same(upward, [], 'imports that point up (or sideways) the path')
})

/** A source file's relative imports, as source paths (type-only ones too: still a circle to read). */
async function importsOf(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8')
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) =>
    resolve(dirname(file), m[1]!).replace(/\.js$/, '.ts'),
  )
}

t.test('no import circle between files of src/, even inside one room', async (t) => {
  const files = await sources(src)
  const graph = new Map(await Promise.all(files.map(async (f) => [f, await importsOf(f)] as const)))
  const circles: string[] = []
  const state = new Map<string, 'open' | 'done'>()
  const visit = (file: string, path: string[]): void => {
    if (state.get(file) === 'done') return
    if (state.get(file) === 'open') {
      circles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(src, f)).join(' → '))
      return
    }
    state.set(file, 'open')
    for (const next of graph.get(file) ?? []) visit(next, [...path, file])
    state.set(file, 'done')
  }
  for (const f of files) visit(f, [])
  t.same(circles, [], 'import circles')
})
