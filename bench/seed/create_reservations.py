#!{{PYTHON}}
# The seed write-up's create_reservations.py, for the benchmark's "seed path". Only its paths
# are adapted to the lab ({{...}} is filled in by bench/seed-path.ts), plus one call: the lab has
# no init system, so dnsmasq is restarted by the lab's script instead of service.restart.

import salt.client

# Use the minion, akin to 'salt-call ...'
client = salt.client.Caller('{{MINION_CONFIG}}')

# Query for IPs...
ret = client.cmd('mine.get', '*', 'network.ip_addrs')

with open('{{RESERVATIONS}}', 'w') as outfile:
    outfile.write('# Managed by Salt. Any changes made will be overwritten.\n')
    for k,v in ret.items():
        outfile.write('dhcp-host={0},{1}\n'.format(k,v[0]))
client.cmd('cmd.run', '{{RESTART}}')
