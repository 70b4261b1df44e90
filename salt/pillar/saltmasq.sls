# saltmasq's pillar: install as <pillar_roots>/saltmasq.sls (/srv/pillar on a stock master) and
# give it to every minion in your pillar top file:
#   base:
#     '*':
#       - saltmasq

# Every minion sends its addresses to the Salt Mine: saltmasq reserves from them. Without this
# a created machine never appears in the mine and saltmasq says so after MINE_WAIT_MS. Use
# network.interfaces instead (and MINE_FUNCTION=network.interfaces) to reserve by MAC as well.
mine_functions:
  network.ip_addrs: []

saltmasq:
  dnsmasq:
    # Read by the saltmasq.dnsmasq state and by the saltmasq execution module on the dnsmasq
    # minion. Keep format and hosts_dir in step with saltmasq's RESERVATIONS_FORMAT and files.
    format: hostsfile
    hosts_dir: /etc/dnsmasq.saltmasq
    conf_dir: /etc/dnsmasq.d
    # True: install the dnsmasq package (from your mirror) and keep the service running and
    # enabled. Debian's package starts a DNS server on port 53 at once. False: you run dnsmasq.
    manage_service: True
    # How saltmasq.reload makes dnsmasq re-read its files: auto (service.reload under systemd,
    # else SIGHUP to the dnsmasq in pidfile), service, or pidfile.
    reload: auto
    # DNSMASQ_PUBLISH=salt: the only files saltmasq.publish may write, by role, and each only
    # with reservation lines (never a dnsmasq directive). The paths are saltmasq's
    # DHCP_HOSTSFILE, ADDN_HOSTS_FILE and (conf format) RESERVATIONS_FILE.
    files:
      dhcp-hosts: /etc/dnsmasq.saltmasq/dhcp-hosts
      addn-hosts: /etc/dnsmasq.saltmasq/addn-hosts
      reservations-conf: /etc/dnsmasq.d/reservations.conf
    pidfile: /run/dnsmasq/dnsmasq.pid
    leasefile: /var/lib/misc/dnsmasq.leases
