"""
Fires salt/cloud/<id>/<KIND> events (created or destroyed; or `noop`: saltmasq/lab/noop/<id>,
which nothing acts on) on the lab master's bus, as the
master does, from one process as fast as it can (salt-run event.send costs ~0.7 s of start-up
per event): COUNT events for vm000, vm001, ... or, given MINION_ID, one event for it. Prints the
epoch time just before the first event was fired and the seconds the firing took, so latencies
can start at the event itself.

usage: fire_events.py MASTER_CONFIG_FILE KIND COUNT [MINION_ID]
"""
import sys
import time

import salt.config
import salt.utils.event


def main():
    opts = salt.config.client_config(sys.argv[1])
    kind = sys.argv[2]
    count = int(sys.argv[3])
    ids = [sys.argv[4]] if len(sys.argv) > 4 else ["vm{:03d}".format(i) for i in range(count)]
    with salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=False) as bus:
        # The first fire_event connects to the master's event socket (~150 ms here): do that
        # with an event nobody acts on, so the time taken is the measured events' own.
        bus.fire_event({"warm-up": True}, "saltmasq/lab/warm-up")
        started = time.time()
        for minion_id in ids:
            tag = "saltmasq/lab/noop/{}".format(minion_id) if kind == "noop" else "salt/cloud/{}/{}".format(minion_id, kind)
            bus.fire_event({"name": minion_id, "event": "{} instance".format(kind)}, tag)
    print("{:.6f} {:.3f}".format(started, time.time() - started))


if __name__ == "__main__":
    main()
