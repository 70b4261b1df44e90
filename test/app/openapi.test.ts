// GET /docs/json is generated from the routes; the README's HTTP table must list exactly the
// same routes, with the same authentication.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { repoRoot } from '../../lab/paths.js'
import { setup } from '../helpers/app.js'

/** `METHOD /path` → needs the bearer token, from the README's "HTTP interface" table. */
async function readmeRoutes(): Promise<Map<string, boolean>> {
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8')
  const section = readme.split(/^## HTTP interface$/m)[1]!.split(/^#{2,3} /m)[0]!
  const routes = new Map<string, boolean>()
  for (const m of section.matchAll(/^\| `(GET|POST|DELETE|PUT|PATCH) ([^`]+)` \| ([^|]+) \|/gm)) {
    // `/reservations/<minionId>[?wait=true]` → `/reservations/{minionId}`
    const path = m[2]!.replace(/\[\?[^\]]*\]$/, '').replace(/<([^>]+)>/g, '{$1}')
    routes.set(`${m[1]} ${path}`, /^Bearer/.test(m[3]!.trim()))
  }
  return routes
}

t.test('the OpenAPI document lists every route with its schemas and security', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject({ method: 'GET', url: '/docs/json' })
  t.equal(res.statusCode, 200, 'open, like /health')
  const doc = res.json()
  t.match(doc, { openapi: /^3\./, info: { title: 'saltmasq', version: /^\d+\.\d+\.\d+/ } })
  t.match(doc.paths['/hooks/salt'].post, { requestBody: { content: { 'application/json': { schema: { properties: { tag: {} } } } } } })
  t.match(doc.paths['/reservations/diff'].get.responses['200'].content['application/json'].schema.properties, { added: {}, files: {}, apply: {} })

  const documented = new Map<string, boolean>()
  for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, { security?: unknown[] }>>)) {
    for (const [method, op] of Object.entries(ops)) documented.set(`${method.toUpperCase()} ${path}`, (op.security ?? []).length > 0)
  }
  const readme = await readmeRoutes()
  t.ok(readme.size >= 9, `the README's table parsed (${readme.size} routes)`)
  t.same([...readme.entries()].sort(), [...documented.entries()].sort(), 'README table and OpenAPI document: same routes, same auth')
})
