# The seed write-up's reactor SLS; only the target is the lab's dnsmasq minion.
update_dnsmasq_reservations:
  local.cmd.script:
    - tgt: 'dns-host'
    - arg:
      -  salt://lab/create_reservations.py
