// A synthetic fleet for the scale benchmark: realistic FQDN minion ids, addresses in a /14,
// about 1% conflicting (an address another minion already has) and 0.5% invalid ids.
export function syntheticMine(n: number): Record<string, string[]> {
  const mine: Record<string, string[]> = {}
  const ipOf = (k: number) => `10.${k >> 16}.${(k >> 8) & 255}.${k & 255}`
  for (let k = 0; k < n; k++) {
    const id = k % 200 === 199 ? `bad node ${k}` : `node${k}.rack${k % 40}.dc${k % 3}.example.com`
    const own = ipOf(k + 256)
    const address = k % 100 === 99 ? ipOf(k + 255) : own
    mine[id] = ['192.168.122.1', address, `172.17.${k & 255}.1`]
  }
  return mine
}
