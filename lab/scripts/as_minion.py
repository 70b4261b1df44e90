"""
Sends one load to the lab master as the minion MINION_ID would: over the authenticated request
channel, holding only that minion's own key (registered on first use; the lab master accepts
keys automatically). The load is read as JSON from LOAD_JSON_FILE; its `id` is set to MINION_ID. What a
minion that is root on its own host can send: `_minion_event` loads with any tag, `events` and
`pretag`, and `_mine` loads with any mine data.

usage: as_minion.py BASE_MINION_CONFIG ROOT MINION_ID LOAD_JSON_FILE
"""
import json
import os
import sys

import salt.channel.client
import salt.config
import salt.minion


def send_as(base_conf, root, minion_id, load):
    """Sends ``load`` as ``minion_id`` (its identity kept under ``root``) and returns the answer."""
    opts = salt.config.minion_config(base_conf)
    opts["id"] = minion_id
    opts["pki_dir"] = os.path.join(root, minion_id, "pki")
    opts["cachedir"] = os.path.join(root, minion_id, "cache")
    os.makedirs(opts["pki_dir"], exist_ok=True)
    # What a minion does at start: turn `master` into master_ip and master_uri.
    opts.update(salt.minion.resolve_dns(opts))
    load["id"] = minion_id
    with salt.channel.client.ReqChannel.factory(opts, crypt="aes") as channel:
        return channel.send(load, timeout=60)


def main():
    with open(sys.argv[4], encoding="utf-8") as f:
        load = json.load(f)
    print(json.dumps(send_as(sys.argv[1], sys.argv[2], sys.argv[3], load)))


if __name__ == "__main__":
    main()
