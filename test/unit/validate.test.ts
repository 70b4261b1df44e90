import t from 'tap'
import { canonicalIp, canonicalMac, hostNameKey, hostNameProblem, Subnets } from '../../src/ledger/validate.js'

t.test('minion ids that dnsmasq accepts as host names', async (t) => {
  for (const id of ['web01', 'Web-01', 'db_2', 'Web_01', 'web01.example.com', 'a', 'x'.repeat(63), '0start', 'a_', '9a', 'deadbeef', '1.2.3']) {
    t.equal(hostNameProblem(id), null, id)
  }
})

t.test('minion ids that could break or inject into a dnsmasq file are refused with a reason', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['-web', /may not start/],
    ['_web', /may not start/],
    ['web 01', /letters, digits/],
    ['web01\ndhcp-range=1.2.3.4', /letters, digits/],
    ['web01,10.0.0.1', /letters, digits/],
    ['web=01', /letters, digits/],
    ['web;rm -rf', /letters, digits/],
    ['wéb', /letters, digits/],
    ['web..example', /empty label/],
    ['web.', /empty label/],
    ['web-', /may not end with -/],
    ['Abc-', /may not end with -/],
    ['a.b-.Cd', /may not end with -/],
    ['AB--C', /third and fourth/],
    ['xn--abc', /third and fourth/],
    ['123', /lease time/],
    ['12m', /lease time/],
    ['3600S', /lease time/],
    ['infinite', /keyword/],
    ['Ignore', /keyword/],
    ['10.0.0.5', /address/],
    ['x'.repeat(64), /at most 63/],
    [`${'a'.repeat(60)}.`.repeat(5), /at most 253/],
  ]
  for (const [id, reason] of bad) t.match(hostNameProblem(id), reason, JSON.stringify(id))
})

t.test('host name key is the first label, case-folded', async (t) => {
  t.equal(hostNameKey('Web01.example.com'), 'web01')
  t.equal(hostNameKey('web01'), 'web01')
})

t.test('IP addresses are canonical or null', async (t) => {
  t.equal(canonicalIp('10.0.0.1'), '10.0.0.1')
  t.equal(canonicalIp('FD00:0:0::0001'), 'fd00::1')
  t.equal(canonicalIp('010.0.0.1'), null, 'leading zeros are ambiguous')
  t.equal(canonicalIp('10.0.0.256'), null)
  t.equal(canonicalIp('fe80::1%eth0'), null, 'zone ids are not reservable')
  t.equal(canonicalIp('web01'), null)
  t.equal(canonicalIp(''), null)
})

t.test('MACs are lower-case colon form; all-zero is no MAC', async (t) => {
  t.equal(canonicalMac('AA-BB-CC-00-11-22'), 'aa:bb:cc:00:11:22')
  t.equal(canonicalMac('00:00:00:00:00:00'), null)
  t.equal(canonicalMac('aa:bb:cc'), null)
})

t.test('managed subnets', async (t) => {
  const s = new Subnets(['10.1.0.0/16', 'fd00:1::/64'])
  t.same(s.cidrs, ['10.1.0.0/16', 'fd00:1::/64'])
  t.ok(s.contains('10.1.255.3'))
  t.notOk(s.contains('10.2.0.1'))
  t.ok(s.contains('fd00:1::5'))
  t.notOk(s.contains('fd00:2::5'))
  t.throws(() => new Subnets(['10.1.0.0']), /not a CIDR/)
  t.throws(() => new Subnets(['10.1.0.0/33']), /prefix longer/)
  t.throws(() => new Subnets(['bogus/8']), /not a CIDR/)
  t.throws(() => new Subnets([]), /at least one/)
})

t.test('subnet arithmetic at the edges', async (t) => {
  const s = new Subnets(['192.168.0.0/23', '255.255.255.255/32', 'fd00:1:2::/48', '2001:db8::1/128'])
  t.ok(s.contains('192.168.1.255'))
  t.notOk(s.contains('192.168.2.0'))
  t.ok(s.contains('255.255.255.255'))
  t.notOk(s.contains('255.255.255.254'))
  const all = new Subnets(['0.0.0.0/0'])
  t.ok(all.contains('0.0.0.0') && all.contains('255.255.255.255') && all.contains('1.2.3.4'))
  const ten = new Subnets(['10.0.0.0/8'])
  t.ok(ten.contains('10.255.255.255'))
  t.notOk(ten.contains('11.0.0.0'))
  t.notOk(ten.contains('9.255.255.255'))
  t.ok(s.contains('fd00:1:2:ffff::1'))
  t.notOk(s.contains('fd00:1:3::1'))
  t.ok(s.contains('2001:db8::1'))
  t.notOk(s.contains('2001:db8::2'))
  t.ok(new Subnets(['0.0.0.0/0']).contains('8.8.8.8'))
  t.ok(new Subnets(['::/0']).contains('fe80::1'))
  t.notOk(new Subnets(['::/0']).contains('10.0.0.1'), 'families never mix')
  t.notOk(new Subnets(['10.0.0.0/8']).contains('::ffff:a00:1'))
})
