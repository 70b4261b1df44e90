"""
Floods the lab master's event bus for SECONDS, as fast as one process can fire: job returns of
about PAYLOAD bytes (salt/job/<jid>/ret/<minion>, the bulk of a busy master's bus), with a
salt/cloud/<id>/created for CLOUD_PREFIX000, CLOUD_PREFIX001, ... mixed in every CLOUD_EVERY
events (at most CLOUD_COUNT of them). Prints: events fired, cloud events fired, seconds.

usage: flood_bus.py MASTER_CONFIG_FILE SECONDS PAYLOAD CLOUD_EVERY CLOUD_PREFIX CLOUD_COUNT
"""
import sys
import time

import salt.config
import salt.utils.event


def main():
    opts = salt.config.client_config(sys.argv[1])
    seconds, payload = float(sys.argv[2]), int(sys.argv[3])
    cloud_every, cloud_prefix, cloud_count = int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
    blob = "x" * max(0, payload - 300)
    fired = cloud = 0
    with salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=False) as bus:
        started = time.time()
        while time.time() - started < seconds:
            jid = "2026{:016d}".format(fired)
            minion = "node{:05d}".format(fired % 10000)
            ret = {"cmd": "_return", "id": minion, "jid": jid, "fun": "state.apply", "fun_args": [],
                   "retcode": 0, "success": True, "return": {"file_|-motd_|-/etc/motd_|-managed": {"comment": blob, "result": True}}}
            bus.fire_event(ret, "salt/job/{}/ret/{}".format(jid, minion))
            fired += 1
            if cloud < cloud_count and fired % cloud_every == 0:
                name = "{}{:03d}".format(cloud_prefix, cloud)
                bus.fire_event({"name": name, "event": "created instance"}, "salt/cloud/{}/created".format(name))
                cloud += 1
                fired += 1
        took = time.time() - started
    print("{} {} {:.3f}".format(fired, cloud, took))


if __name__ == "__main__":
    main()
