// Every way saltmasq is started gives node the same V8 flags (src/start/node-flags.ts).
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { repoRoot } from '../../lab/paths.js'
import { NODE_FLAGS } from '../../src/start/node-flags.js'

const read = async (path: string): Promise<string> => await readFile(join(repoRoot, path), 'utf8')

t.test('npm start, the image, the systemd unit and the lab start node with NODE_FLAGS before the server', async (t) => {
  const pkg = JSON.parse(await read('package.json')) as { scripts: { start: string } }
  t.equal(pkg.scripts.start, `node ${NODE_FLAGS.join(' ')} dist/src/server.js`, 'npm start')
  const cmd = /^CMD (\[.*\])$/m.exec(await read('docker/Dockerfile'))?.[1]
  t.same(JSON.parse(cmd ?? 'null'), ['node', ...NODE_FLAGS, 'dist/src/server.js'], 'the image')
  const exec = /^ExecStart=(.*)$/m.exec(await read('salt/states/saltmasq/files/saltmasq.service.jinja'))?.[1]
  t.equal(exec, `{{ node }} ${NODE_FLAGS.join(' ')} {{ install_dir }}/dist/src/server.js`, 'the systemd unit')
  t.match(await read('lab/saltmasq-process.ts'), /\[\.\.\.NODE_FLAGS, join\(repoRoot, 'dist', 'src', 'server\.js'\)\]/, 'the lab')
})
