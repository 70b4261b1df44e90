// The lab's Salt configuration as YAML lines: a minion's mine functions, the eauth grants.
import type { BindMount, Namespace } from './netns.js'

export interface LabMinion {
  id: string
  /**
   * What this minion's mine reports for network.ip_addrs (a grain-backed alias). Without it the
   * mine holds the real network.ip_addrs of the minion's namespace.
   */
  ips?: string[]
  /** Run the minion inside this network namespace (a DHCP lab machine). */
  netns?: Namespace
  /** More minion config lines. */
  extraConfig?: string[]
  /** No mine_functions in the minion's config: it gets them from pillar (the install path). */
  mineFromPillar?: boolean
  /** A directory mounted for this minion alone: its host's view of a path every dnsmasq host has. */
  bindMount?: BindMount
}

/** A minion's mine_functions: from pillar, the real network.ip_addrs, or a grain-backed alias of `ips`. */
export function minionMineConfig(m: LabMinion): string[] {
  if (m.mineFromPillar === true) return []
  if (m.ips === undefined) return ['mine_functions:', '  network.ip_addrs: []']
  return [
    'grains:', `  lab_ips: ${yamlList(m.ips)}`, 'mine_functions:', '  network.ip_addrs:',
    '    - mine_function: grains.get', '    - lab_ips',
  ]
}

/** Functions the eauth user may run on `target`; a function with `args` only with those (regexes). */
export interface Grant {
  target: string
  functions: Array<string | { fun: string, args: string[] }>
}

/** One eauth entry per line in YAML's flow style (JSON), so nothing depends on hand indentation. */
export function grantLines(grants: readonly Grant[]): string[] {
  return grants.map(
    (g) =>
      `      - ${JSON.stringify({ [g.target]: g.functions.map((f) => (typeof f === 'string' ? f : { [f.fun]: { args: f.args } })) })}`,
  )
}

export function yamlList(items: string[]): string {
  return `[${items.map((i) => JSON.stringify(i)).join(', ')}]`
}
