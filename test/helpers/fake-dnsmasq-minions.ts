// dnsmasq minions as saltmasq.publish sees them, in memory, for the salt publisher's unit tests:
// each holds files and answers a publish the way the execution module does (the module's own
// behaviour is tested against Python in salt-module.test.ts, and end to end in the lab).
import { inflateSync } from 'node:zlib'
import { applyHunks, sha256, splitLines, type Hunk } from '../../src/dnsmasq/line-delta.js'
import type { LocalClient } from '../../src/salt/local-call.js'

interface FakeMinion {
  files: Map<string, string>
  up: boolean
  applies: number
  /** The next applies fail with this comment. */
  failApply: string | null
}

type PublishFile = { role: string, hash: string, deflate?: string, base?: string, hunks?: Hunk[] }

export class FakeDnsmasqMinions {
  readonly minions = new Map<string, FakeMinion>()
  readonly calls: Array<{
    target: string
    tgtType: string
    fun: string
    bytes: number
    files: PublishFile[]
    forceApply: boolean
  }> = []

  /** Runs after the minions acted and before the answer (a crash of saltmasq mid-call throws here). */
  afterCall: (() => void) | null = null

  constructor(ids: string[]) {
    for (const id of ids) this.minions.set(id, { files: new Map(), up: true, applies: 0, failApply: null })
  }

  minion(id: string): FakeMinion {
    return this.minions.get(id)!
  }

  #matches(id: string, target: string, tgtType: string): boolean {
    if (tgtType === 'list') return target.split(',').includes(id)
    return new RegExp(`^${target.replace(/\*/g, '.*')}$`).test(id)
  }

  /** The local client's call, as Salt answers it for these minions. */
  local: LocalClient['local'] = async (target, fun, args, opts = {}) => {
    const tgtType = opts.tgtType ?? 'glob'
    const kwarg = (opts.kwarg ?? {}) as { files: PublishFile[], apply: string, force_apply: boolean }
    this.calls.push({
      target,
      tgtType,
      fun,
      bytes: Buffer.byteLength(JSON.stringify(kwarg)),
      files: kwarg.files,
      forceApply: kwarg.force_apply,
    })
    const out: Record<string, unknown> = {}
    for (const [id, m] of this.minions) {
      if (!this.#matches(id, target, tgtType)) continue
      // As Salt answers for a targeted minion that is down.
      if (!m.up) {
        out[id] = 'Minion did not return. [Not connected]'
        continue
      }
      out[id] =
        fun === 'saltmasq.publish'
          ? this.#publish(m, kwarg)
          : { result: true, released: [], comment: `${fun} ${args.join(' ')}` }
    }
    this.afterCall?.()
    return out
  }

  #publish(
    m: FakeMinion,
    { files, apply, force_apply: force }: { files: PublishFile[], apply: string, force_apply: boolean },
  ): unknown {
    const plan: Array<[string, string]> = []
    const report: Record<string, { status: string, hash: string | null }> = {}
    let stale = false
    for (const f of files) {
      const current = m.files.get(f.role) ?? null
      const hash = current === null ? null : sha256(current)
      let wanted: string | null = null
      if (f.deflate !== undefined) wanted = inflateSync(Buffer.from(f.deflate, 'base64')).toString('utf8')
      else if (f.base === hash && current !== null)
        wanted = applyHunks(splitLines(current), f.hunks ?? [])
          .map((l) => `${l}\n`)
          .join('')
      if (wanted === null || sha256(wanted) !== f.hash) {
        report[f.role] = { status: 'stale', hash }
        stale = true
      } else plan.push([f.role, wanted])
    }
    if (stale) return { result: false, stale: true, files: report, applied: false, comment: 'stale' }
    let changed = 0
    for (const [path, wanted] of plan) {
      const written = m.files.get(path) !== wanted
      if (written) changed++
      m.files.set(path, wanted)
      report[path] = { status: written ? 'written' : 'unchanged', hash: sha256(wanted) }
    }
    if (apply === 'none' || (changed === 0 && !force))
      return { result: true, files: report, applied: false, comment: `${changed} file(s) written` }
    // The module raises: Salt hands the caller its message as an ERROR string.
    if (m.failApply !== null) return `ERROR: ${m.failApply}`
    m.applies++
    return { result: true, files: report, applied: true, comment: `${changed} file(s) written; reloaded` }
  }
}
