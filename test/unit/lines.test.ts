import t from 'tap'
import { LineRenderer, parseDhcpHosts } from '../../src/dnsmasq/lines.js'
import type { Reservation } from '../../src/ledger/ledger.js'

const stamp = '2026-01-01T00:00:00.000Z'
const r = (minionId: string, ip: string, mac?: string): Reservation => ({
  minionId,
  ip,
  firstSeen: stamp,
  lastSeen: stamp,
  ...(mac === undefined ? {} : { mac }),
})
const HEADER = '# Managed by saltmasq. Any change made here will be overwritten.\n'

t.test('conf format: the seed\'s dhcp-host lines, sorted, with a managed header', async (t) => {
  const file = new LineRenderer().confFile([
    r('web02', '10.0.0.6'),
    r('web01', '10.0.0.5'),
    r('db', 'fd00::7'),
    r('mac1', '10.0.0.9', 'aa:bb:cc:dd:ee:ff'),
  ])
  t.equal(
    file,
    HEADER
    + [
      'dhcp-host=db,[fd00::7]', 'dhcp-host=aa:bb:cc:dd:ee:ff,10.0.0.9,mac1', 'dhcp-host=web01,10.0.0.5',
      'dhcp-host=web02,10.0.0.6', '',
    ].join('\n'),
  )
})

t.test('hostsfile format: dhcp-hostsfile and addn-hosts, with the DNS domain for bare names', async (t) => {
  const files = new LineRenderer({ domain: 'lab' }).hostsFiles([
    r('web01', '10.0.0.5'),
    r('db01.example.com', '10.0.0.6'),
  ])
  t.equal(files.dhcpHosts, HEADER + 'db01.example.com,10.0.0.6\nweb01,10.0.0.5\n')
  t.equal(files.addnHosts, HEADER + '10.0.0.6 db01.example.com\n10.0.0.5 web01 web01.lab\n')
})

t.test('an empty ledger renders a valid file with only the header', async (t) => {
  t.equal(new LineRenderer().confFile([]), HEADER)
})

t.test('the renderer refuses anything dnsmasq would reject or that could inject a directive', async (t) => {
  t.throws(() => new LineRenderer().confFile([r('web01\ndhcp-range=1.1.1.1', '10.0.0.5')]), {
    code: 'SALTMASQ_RENDER_REFUSED',
  })
  t.throws(() => new LineRenderer().confFile([r('web01', '10.0.0.5,set:x')]), { code: 'SALTMASQ_RENDER_REFUSED' })
  t.throws(
    () => new LineRenderer().confFile([r('web01', 'FD00::1')]),
    { code: 'SALTMASQ_RENDER_REFUSED' },
    'non-canonical address',
  )
  t.throws(() => new LineRenderer().confFile([r('web01', '10.0.0.5', 'AA:BB')]), { code: 'SALTMASQ_RENDER_REFUSED' })
  t.throws(() => new LineRenderer({ domain: 'bad domain' }).hostsFiles([]), { code: 'SALTMASQ_RENDER_REFUSED' })
})

t.test('parseDhcpHosts reads back what render wrote, in both formats', async (t) => {
  const list = [r('web01', '10.0.0.5'), r('db', 'fd00::7'), r('m', '10.0.0.9', 'aa:bb:cc:dd:ee:ff')]
  const expected = [
    { minionId: 'db', ip: 'fd00::7' },
    { minionId: 'm', ip: '10.0.0.9', mac: 'aa:bb:cc:dd:ee:ff' },
    { minionId: 'web01', ip: '10.0.0.5' },
  ]
  t.same(parseDhcpHosts(new LineRenderer().confFile(list)).entries, expected)
  t.same(parseDhcpHosts(new LineRenderer().hostsFiles(list).dhcpHosts).entries, expected)
  const { entries, unreadable } = parseDhcpHosts(
    'dhcp-host=ok,10.0.0.1\ndhcp-host=-bad,10.0.0.2\ndhcp-host=x,notip\nzz:zz,10.0.0.3,y\na,b,c,d\n',
  )
  t.same(entries, [{ minionId: 'ok', ip: '10.0.0.1' }])
  t.equal(unreadable.length, 4)
})

t.test('hostsdir format: one DHCP file and one DNS file per reservation, named by minion id', async (t) => {
  const entries = new LineRenderer({ domain: 'lab' }).entries([
    r('web01', '10.0.0.5'),
    r('db', 'fd00::7'),
    r('m1.example.com', '10.0.0.9', 'aa:bb:cc:dd:ee:ff'),
  ])
  t.same(
    [...entries.dhcpHosts],
    [
      ['web01', `${HEADER}web01,10.0.0.5\n`],
      ['db', `${HEADER}db,[fd00::7]\n`],
      ['m1.example.com', `${HEADER}aa:bb:cc:dd:ee:ff,10.0.0.9,m1.example.com\n`],
    ],
  )
  t.same(
    [...entries.dnsHosts],
    [
      ['web01', `${HEADER}10.0.0.5 web01 web01.lab\n`],
      ['db', `${HEADER}fd00::7 db db.lab\n`],
      ['m1.example.com', `${HEADER}10.0.0.9 m1.example.com\n`],
    ],
  )
  t.same(
    parseDhcpHosts([...entries.dhcpHosts.values()].join('')).entries.map((e) => e.minionId),
    ['web01', 'db', 'm1.example.com'],
    'the files read back',
  )
})

t.test('hostsdir format refuses a name that is not a safe file name, or a bad domain', async (t) => {
  for (const id of ['.hidden', '../etc', 'a/b', 'x~', '#x#', '']) {
    t.throws(
      () => new LineRenderer().entries([r(id, '10.0.0.5')]),
      { code: 'SALTMASQ_RENDER_REFUSED' },
      JSON.stringify(id),
    )
  }
  t.throws(() => new LineRenderer({ domain: 'bad domain' }).entries([]), { code: 'SALTMASQ_RENDER_REFUSED' })
})

t.test(
  'a LineRenderer renders each entry once and as a fresh render would; a replaced entry is rendered again',
  async (t) => {
    const renderer = new LineRenderer({ domain: 'lab' })
    const list = [r('web01', '10.0.0.5'), r('db01.example.com', '10.0.0.6', 'aa:bb:cc:dd:ee:ff')]
    t.same(renderer.hostsFiles(list), new LineRenderer({ domain: 'lab' }).hostsFiles(list))
    t.same(
      renderer.hostsFiles(list),
      new LineRenderer({ domain: 'lab' }).hostsFiles(list),
      'the second time from its memo',
    )
    t.equal(renderer.dhcpLine(list[0]!), 'web01,10.0.0.5')
    t.equal(renderer.hostsLine(list[0]!), '10.0.0.5 web01 web01.lab')
    const moved = r('web01', '10.0.0.9')
    t.equal(renderer.dhcpLine(moved), 'web01,10.0.0.9')
    t.throws(
      () => renderer.dhcpLine(r('bad\nname', '10.0.0.1')),
      { code: 'SALTMASQ_RENDER_REFUSED' },
      'still the last gate',
    )
    t.equal(new LineRenderer().confFile(list), new LineRenderer().confFile(list))
  },
)
