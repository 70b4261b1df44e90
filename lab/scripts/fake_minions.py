"""
Registers COUNT minion identities with the lab master and stores mine data for each, the way a
minion does (an authenticated `_mine` request on the master's ret port), without running COUNT
minion processes: the burst benchmark needs a mine of hundreds of machines on two cores.

usage: fake_minions.py BASE_MINION_CONFIG ROOT COUNT FIRST_IP_PREFIX
"""
import sys

from as_minion import send_as


def main():
    base_conf, root, count, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    id_prefix = sys.argv[5] if len(sys.argv) > 5 else "vm"
    for i in range(count):
        minion_id = "{}{:03d}".format(id_prefix, i)
        send_as(base_conf, root, minion_id, {"cmd": "_mine", "data": {"network.ip_addrs": ["{}.{}".format(prefix, i + 10)]}, "clear": False})
    print(count)


if __name__ == "__main__":
    main()
