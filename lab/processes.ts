// Process plumbing shared by the integration tests, the lab, the benchmarks and the demo:
// start daemons in their own process group, stop them for sure, run commands, wait for things.
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs'
import { constants } from 'node:os'
import { dirname } from 'node:path'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { sleep } from '../src/util/timers.js'

export interface Daemon {
  name: string
  child: ChildProcess
  exited: Promise<number | null>
}

const live = new Set<Daemon>()
/** Daemons that fork themselves away (dnsmasq), known by their pid files. */
const pidFiles = new Set<string>()
const tempDirs = new Set<string>()

// Whatever happens to the process that started them (an exception, a signal, a failed test),
// nothing of the lab outlives it.
process.on('exit', () => {
  for (const d of live) killGroup(d, 'SIGKILL')
  for (const file of pidFiles) killByPidFileNow(file)
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
})
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  // Without a handler Node exits on these without 'exit' handlers running.
  process.once(signal, () => process.exit(128 + (constants.signals[signal] ?? 0)))
}

function killByPidFileNow(file: string): void {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim())
    // A pid file outlives its process: signal only a process that is still the one it names.
    if (pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dirname(file))) process.kill(pid, 'SIGKILL')
  } catch {
    // gone already
  }
}

/** Kills the daemon named by `pidFile` when this process exits, unless the returned function is called first. */
export function killOnExit(pidFile: string): () => void {
  pidFiles.add(pidFile)
  return () => {
    pidFiles.delete(pidFile)
  }
}

/** Removes `dir` when this process exits, unless the returned function is called first. */
export function removeOnExit(dir: string): () => void {
  tempDirs.add(dir)
  return () => {
    tempDirs.delete(dir)
  }
}

function killGroup(d: Daemon, signal: NodeJS.Signals): void {
  if (d.child.pid === undefined) return
  try {
    process.kill(-d.child.pid, signal)
  } catch {
    // already gone
  }
}

export function startDaemon(
  name: string,
  command: string,
  args: string[],
  logFile: string,
  env: NodeJS.ProcessEnv = process.env,
): Daemon {
  const fd = openSync(logFile, 'a')
  const child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd], env })
  closeSync(fd)
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const daemon: Daemon = { name, child, exited }
  live.add(daemon)
  void exited.then(() => live.delete(daemon))
  return daemon
}

/** SIGTERM to the whole group, SIGKILL after `graceMs`; resolves once the leader is gone. */
export async function stopDaemon(d: Daemon, graceMs = 8000): Promise<void> {
  if (d.child.exitCode !== null || d.child.signalCode !== null) {
    killGroup(d, 'SIGKILL')
    return
  }
  killGroup(d, 'SIGTERM')
  const timer = setTimeout(() => killGroup(d, 'SIGKILL'), graceMs)
  await d.exited
  clearTimeout(timer)
  // salt daemons leave workers behind their leader; the group goes with it.
  killGroup(d, 'SIGKILL')
}

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

/** What a child process writes, as it comes. */
export function captured(
  child: { stdout: NodeJS.ReadableStream, stderr: NodeJS.ReadableStream },
): { stdout: string, stderr: string } {
  const out = { stdout: '', stderr: '' }
  child.stdout.on('data', (d: Buffer) => { out.stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out.stderr += d.toString() })
  return out
}

export async function run(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {},
): Promise<RunResult> {
  return await new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
    const output = captured(child)
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000)
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout: output.stdout, stderr: output.stderr })
    })
  })
}

export async function mustRun(command: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const res = await run(command, args, opts)
  if (res.code !== 0)
    throw new Error(`${command} ${args.join(' ')} exited ${res.code}: ${res.stderr.trim() || res.stdout.trim()}`)
  return res.stdout
}

/** The pid in a daemon's pid file while that process lives, else undefined. */
export async function livePid(pidFile: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(pidFile, 'utf8')).trim())
    process.kill(pid, 0)
    return pid
  } catch {
    return undefined
  }
}

/** SIGTERM, then SIGKILL if it is still there after `graceMs`; resolves once it is gone. */
export async function stopPid(pid: number, graceMs: number): Promise<void> {
  const gone = (): boolean => {
    try {
      process.kill(pid, 0)
      return false
    } catch {
      return true
    }
  }
  process.kill(pid, 'SIGTERM')
  try {
    await waitFor(`pid ${pid} to exit`, gone, graceMs, 50)
  } catch {
    process.kill(pid, 'SIGKILL')
    await waitFor(`pid ${pid} to be killed`, gone, 10_000, 50)
  }
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        resolve(typeof address === 'object' && address !== null ? address.port : 0)
      })
    })
  })
}

export { sleep }

/** Polls `probe` until it returns a value other than undefined/false, or fails naming `what`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined && value !== false) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError === undefined ? '' : `: ${String(lastError)}`}`,
      )
    }
    await sleep(intervalMs)
  }
}
