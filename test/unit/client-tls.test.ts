// SALT_API_CA_FILE: salt-api over https with a private CA, against a real TLS server on loopback.
import { execFileSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { pino } from 'pino'
import { SaltApiStandIn } from '../../lab/salt-api-standin.js'
import { SaltClient } from '../../src/salt/client.js'

const dir = await mkdtemp(join(tmpdir(), 'smq-tls-'))
t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
  '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
const cert = await readFile(join(dir, 'cert.pem'), 'utf8')

const standin = new SaltApiStandIn({ password: 'p' })
const url = await standin.listen({ key: await readFile(join(dir, 'key.pem')), cert })
t.teardown(async () => { await standin.close() })
const logger = pino({ level: 'silent' })

t.test('with the CA that signed salt-api\'s certificate, calls succeed', async (t) => {
  const c = new SaltClient({ url, username: 'u', password: 'p', eauth: 'pam', timeoutMs: 5000, logger, ca: cert })
  await c.probe()
  await c.close()
  t.pass('probe over TLS')
})

t.test('without it, the certificate is refused and the error says so', async (t) => {
  const c = new SaltClient({ url, username: 'u', password: 'p', eauth: 'pam', timeoutMs: 5000, logger })
  await t.rejects(c.probe(), { code: 'SALTMASQ_SALT_UNREACHABLE', message: /SELF_SIGNED|CERT|certificate/i })
  await c.close()
})
