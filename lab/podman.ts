// podman as these test machines can run it: builds with chroot isolation, runs with runc,
// cgroupfs and the host's ulimits (see docker/ and the README's "Container image"). One
// CONTAINERS_CONF file, written once, carries the engine settings every call needs.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { mustRun, run, type RunResult } from './processes.js'
import { repoRoot } from './paths.js'

export class Podman {
  readonly #env: NodeJS.ProcessEnv

  private constructor(confFile: string) {
    this.#env = { ...process.env, CONTAINERS_CONF: confFile }
  }

  static async open(dir: string): Promise<Podman> {
    const conf = join(dir, 'containers.conf')
    await writeFile(conf, '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\n')
    return new Podman(conf)
  }

  async run(args: string[], timeoutMs = 120_000): Promise<RunResult> {
    return await run('podman', ['--runtime', 'runc', ...args], { env: this.#env, timeoutMs })
  }

  async must(args: string[], timeoutMs = 120_000): Promise<string> {
    return await mustRun('podman', ['--runtime', 'runc', ...args], { env: this.#env, timeoutMs })
  }

  /** The local base image (.ci/container-base builds it once). */
  async localBase(): Promise<string> {
    const out = await mustRun('bash', [join(repoRoot, '.ci', 'container-base')], { env: this.#env, timeoutMs: 600_000 })
    return out.trim().split('\n').at(-1)!
  }

  /** docker/Dockerfile built on `base`, tagged `tag`; returns the build's output. */
  async build(base: string, tag: string): Promise<string> {
    return await this.must(['build', '--isolation', 'chroot', '--format', 'docker', '--build-arg', `BASE_IMAGE=${base}`,
      '-f', join(repoRoot, 'docker', 'Dockerfile'), '-t', tag, repoRoot], 600_000)
  }
}
