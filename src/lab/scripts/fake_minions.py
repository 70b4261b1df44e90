"""
Registers COUNT minion identities with the lab master and stores mine data for each, the way a
minion does (an authenticated `_mine` request on the master's ret port), without running COUNT
minion processes: the burst benchmark needs a mine of hundreds of machines on two cores.

usage: fake_minions.py BASE_MINION_CONFIG ROOT COUNT FIRST_IP_PREFIX
"""
import os
import sys

import salt.channel.client
import salt.config
import salt.minion


def main():
    base_conf, root, count, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    id_prefix = sys.argv[5] if len(sys.argv) > 5 else "vm"
    for i in range(count):
        minion_id = "{}{:03d}".format(id_prefix, i)
        opts = salt.config.minion_config(base_conf)
        opts["id"] = minion_id
        opts["pki_dir"] = os.path.join(root, minion_id, "pki")
        opts["cachedir"] = os.path.join(root, minion_id, "cache")
        os.makedirs(opts["pki_dir"], exist_ok=True)
        # What a minion does at start: turn `master` into master_ip and master_uri.
        opts.update(salt.minion.resolve_dns(opts))
        load = {
            "cmd": "_mine",
            "id": minion_id,
            "data": {"network.ip_addrs": ["{}.{}".format(prefix, i + 10)]},
            "clear": False,
        }
        with salt.channel.client.ReqChannel.factory(opts, crypt="aes") as channel:
            channel.send(load, timeout=60)
    print(count)


if __name__ == "__main__":
    main()
