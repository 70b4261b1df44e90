// One file per reservation in a directory dnsmasq watches: only changed files are touched,
// temporaries never carry a name dnsmasq reads, files saltmasq did not write are left alone.
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { HostsDirectory } from '../../src/dnsmasq/hosts-directory.js'
import { HEADER } from '../../src/dnsmasq/lines.js'

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'smq-hostsdir-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  return join(dir, 'dhcp-hosts.d')
}

const entry = (line: string): string => `${HEADER}${line}\n`
const writeWanted = async (dir: HostsDirectory, wanted: Map<string, string>) => await dir.write(dir.plan(wanted))

t.test('creates the directory, writes wanted files, then touches only what changed', async (t) => {
  const path = await tempDir(t)
  const dir = await HostsDirectory.open(path)
  const first = await writeWanted(dir, new Map([['web01', entry('web01,10.0.0.5')], ['web02', entry('web02,10.0.0.6')]]))
  t.same(first.created.sort(), ['web01', 'web02'])
  t.same((await readdir(path)).sort(), ['web01', 'web02'], 'no temporary left behind')
  t.equal(await readFile(join(path, 'web01'), 'utf8'), entry('web01,10.0.0.5'))

  const web02Before = (await stat(join(path, 'web02'))).ino
  const second = await writeWanted(dir, new Map([['web01', entry('aa:bb:cc:dd:ee:ff,10.0.0.5,web01')], ['web02', entry('web02,10.0.0.6')], ['web03', entry('web03,10.0.0.7')]]))
  t.same(second.created, ['web03'])
  t.same([...second.replaced], [['web01', entry('web01,10.0.0.5')]], 'the old content is reported')
  t.equal(second.removed.size, 0)
  t.equal((await stat(join(path, 'web02'))).ino, web02Before, 'an unchanged file is not rewritten')

  const third = await writeWanted(dir, new Map([['web03', entry('web03,10.0.0.7')]]))
  t.same([...third.removed.keys()].sort(), ['web01', 'web02'])
  t.same(await readdir(path), ['web03'])
  const none = await writeWanted(dir, new Map([['web03', entry('web03,10.0.0.7')]]))
  t.same(none, { created: [], replaced: new Map(), removed: new Map(), blocked: [] })
})

t.test('on open: owned files are indexed, crash temporaries removed, foreign files left alone and reported', async (t) => {
  const path = await tempDir(t)
  await writeWanted(await HostsDirectory.open(path), new Map([['web01', entry('web01,10.0.0.5')], ['gone', entry('gone,10.0.0.9')]]))
  await writeFile(join(path, '.web02.123.abcd0123.tmp'), HEADER + 'web02,10.0')
  await writeFile(join(path, 'printer'), 'aa:bb:cc:dd:ee:01,10.0.0.50,printer\n')
  await writeFile(join(path, '.keep'), '')
  await writeFile(join(path, '.notes.tmp'), 'not a saltmasq temporary')

  const dir = await HostsDirectory.open(path)
  t.same([...dir.owned.keys()].sort(), ['gone', 'web01'])
  t.same(dir.unowned, ['printer'])
  t.notOk((await readdir(path)).includes('.web02.123.abcd0123.tmp'), 'the torn temporary is gone')

  const change = await writeWanted(dir, new Map([['web01', entry('web01,10.0.0.5')], ['printer', entry('printer,10.0.0.51')]]))
  t.same(change.blocked, ['printer'], 'a wanted name held by a foreign file is reported, not overwritten')
  t.same([...change.removed.keys()], ['gone'])
  t.equal(await readFile(join(path, 'printer'), 'utf8'), 'aa:bb:cc:dd:ee:01,10.0.0.50,printer\n')
  t.same((await readdir(path)).sort(), ['.keep', '.notes.tmp', 'printer', 'web01'])
})

t.test('a failed write leaves no temporary and keeps the index true to the disk', async (t) => {
  const path = await tempDir(t)
  const dir = await HostsDirectory.open(path)
  await writeWanted(dir, new Map([['web01', entry('web01,10.0.0.5')]]))
  // A directory where the file should go makes the rename fail.
  await mkdir(join(path, 'web02'))
  await t.rejects(writeWanted(dir, new Map([['web01', entry('web01,10.0.0.5')], ['web02', entry('web02,10.0.0.6')]])))
  t.same((await readdir(path)).sort(), ['web01', 'web02'])
  t.notOk(dir.owned.has('web02'))
})
