import t from 'tap'
import { parseMine } from '../../src/salt/mine.js'

t.test('network.ip_addrs lists become canonical addresses; junk entries are dropped', async (t) => {
  const { snapshot, problems } = parseMine({ web01: ['10.0.0.5', 'not-an-ip', 7, 'FD00::0:1'] })
  t.same(snapshot.get('web01'), { addresses: [{ ip: '10.0.0.5' }, { ip: 'fd00::1' }] })
  t.same(problems, [])
})

t.test('network.interfaces gives addresses with their MAC, loopback ignored', async (t) => {
  const { snapshot } = parseMine({
    web01: {
      lo: { hwaddr: '00:00:00:00:00:00', inet: [{ address: '127.0.0.1' }] },
      eth1: { hwaddr: 'AA:BB:CC:DD:EE:01', inet: [{ address: '10.0.0.5' }], inet6: [{ address: 'fd00::5' }] },
      eth0: { hwaddr: '00:00:00:00:00:00', inet: [{ address: '192.168.1.2' }] },
      bad: 'x',
    },
  })
  t.same(snapshot.get('web01'), {
    addresses: [{ ip: '192.168.1.2' }, { ip: '10.0.0.5', mac: 'aa:bb:cc:dd:ee:01' }, { ip: 'fd00::5', mac: 'aa:bb:cc:dd:ee:01' }],
  })
})

t.test('malformed mine data is reported per minion, never thrown', async (t) => {
  const { snapshot, problems } = parseMine({ ok: ['10.0.0.1'], a: null, b: 'x', c: 3 })
  t.same([...snapshot.keys()], ['ok'])
  t.same(problems.map((p) => p.minionId), ['a', 'b', 'c'])
  t.match(parseMine(['x']).problems[0]?.reason, /a list/)
  t.match(parseMine(null).problems[0]?.reason, /object/)
})

t.test('a reserved minion is only noted as present (its address never changes); its malformed data is still a problem', async (t) => {
  const { snapshot, problems } = parseMine({ kept: ['10.0.0.1'], kept2: { eth0: { inet: [{ address: '10.0.0.2' }] } }, fresh: ['10.0.0.3'], broken: null }, new Set(['kept', 'kept2', 'broken']))
  t.same([...snapshot.keys()], ['kept', 'kept2', 'fresh'])
  t.same(snapshot.get('kept')?.addresses, [])
  t.same(snapshot.get('kept2')?.addresses, [])
  t.same(snapshot.get('fresh')?.addresses, [{ ip: '10.0.0.3' }])
  t.same(problems.map((p) => p.minionId), ['broken'], 'a reserved minion with unreadable data is missing from the mine (it turns stale)')
})
