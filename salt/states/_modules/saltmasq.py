"""
saltmasq's helpers on the minion that runs dnsmasq, called by saltmasq through salt-api.

Install: put this file in ``<file_roots>/_modules/`` (``/srv/salt/_modules/`` on a stock
master) and run ``salt <dnsmasq minion> saltutil.sync_modules``.

No function takes a path from its caller: an eauth user allowed to call them could otherwise
signal any process or read any file as root. Paths come from the minion's configuration or its
pillar (``config.get``), under ``saltmasq:dnsmasq``:

    pidfile    /run/dnsmasq/dnsmasq.pid        the dnsmasq to SIGHUP when there is no service manager
    leasefile  /var/lib/misc/dnsmasq.leases    where dnsmasq keeps its leases
    conf_file  (dnsmasq's default)             the configuration ``dnsmasq --test`` checks
    reload     auto                            auto: ``service.reload`` under systemd, else the
                                               pid file; or always ``service`` / ``pidfile``

Every argument is checked before it reaches a command line, and commands run without a shell.
"""
import ipaddress
import os
import re
import signal
import subprocess

__virtualname__ = "saltmasq"

_INTERFACE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
_MAC = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")
_CLIENT_ID = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2})*$")
_DEFAULTS = {
    "pidfile": "/run/dnsmasq/dnsmasq.pid",
    "leasefile": "/var/lib/misc/dnsmasq.leases",
    "conf_file": None,
    "reload": "auto",
}


def __virtual__():
    return __virtualname__


def _run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _setting(name):
    """``saltmasq:dnsmasq:<name>`` from the minion's config or pillar, else the default."""
    get = globals().get("__salt__", {}).get("config.get")
    value = get("saltmasq:dnsmasq:" + name, None) if get else None
    return _DEFAULTS[name] if value in (None, "") else value


def _systemd_booted():
    return os.path.isdir("/run/systemd/system")


def _is_dnsmasq(pid):
    """Whether ``pid`` is a running dnsmasq (a stale pid file may name anything by now)."""
    try:
        with open("/proc/{}/comm".format(pid), encoding="utf-8") as handle:
            return handle.read().strip() == "dnsmasq"
    except OSError:
        return False


def reload():
    """
    Make dnsmasq re-read its hosts files (dhcp-hostsfile, dhcp-hostsdir, addn-hosts) with
    SIGHUP: no restart, no gap in DHCP or DNS service. Under systemd, ``service.reload``;
    without a service manager (Debian's init script has no reload), SIGHUP to the dnsmasq
    whose pid the configured pid file holds, and only if that process is dnsmasq.

    CLI Example: ``salt dns01 saltmasq.reload``
    """
    how = _setting("reload")
    if how == "service" or (how == "auto" and _systemd_booted()):
        ok = __salt__["service.reload"]("dnsmasq")
        return {"result": bool(ok), "comment": "service.reload dnsmasq"}
    pidfile = _setting("pidfile")
    try:
        with open(pidfile, encoding="ascii") as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError) as exc:
        return {"result": False, "comment": "cannot read dnsmasq's pid from {}: {}".format(pidfile, exc)}
    if pid <= 1 or not _is_dnsmasq(pid):
        return {"result": False, "comment": "{} names pid {}, which is not a running dnsmasq".format(pidfile, pid)}
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as exc:
        return {"result": False, "comment": "cannot signal dnsmasq pid {}: {}".format(pid, exc)}
    return {"result": True, "comment": "sent SIGHUP to dnsmasq pid {} ({})".format(pid, pidfile), "pid": pid}


def check():
    """
    ``dnsmasq --test``: does dnsmasq accept its configuration (conf-dir files included)?

    CLI Example: ``salt dns01 saltmasq.check``
    """
    cmd = ["dnsmasq", "--test"]
    conf_file = _setting("conf_file")
    if conf_file is not None:
        cmd.append("--conf-file={}".format(conf_file))
    code, out = _run(cmd)
    return {"result": code == 0, "comment": out}


def _read_leases(leasefile):
    """The lease file's IPv4 lines and IPv6 lines (with the server DUID they follow)."""
    try:
        with open(leasefile, encoding="utf-8") as handle:
            lines = [line.split() for line in handle]
    except FileNotFoundError:
        return [], [], None
    v4, v6, server_duid = [], [], None
    for fields in lines:
        if len(fields) == 2 and fields[0] == "duid":
            server_duid = fields[1]
        elif server_duid is None:
            v4.append(fields)
        else:
            v6.append(fields)
    return v4, v6, server_duid


def _same_address(text, address):
    try:
        return ipaddress.ip_address(text) == address
    except ValueError:
        return False


def release_lease(ip, interface):
    """
    Free the DHCP lease of ``ip`` at once, so a destroyed machine's address and name are free
    immediately: ``dhcp_release`` for IPv4, ``dhcp_release6`` for IPv6 (both dnsmasq-utils).
    The MAC, client id, IAID and DUIDs come from the lease file. No lease for that address is
    not an error.

    CLI Example: ``salt dns01 saltmasq.release_lease 10.0.0.5 interface=br0``
    """
    try:
        address = ipaddress.ip_address(str(ip))
    except ValueError:
        return {"result": False, "comment": "not an IP address: {!r}".format(ip)}
    if not _INTERFACE.match(str(interface)):
        return {"result": False, "comment": "not an interface name: {!r}".format(interface)}
    v4, v6, server_duid = _read_leases(_setting("leasefile"))
    released = []
    if address.version == 4:
        for fields in v4:
            if len(fields) < 4 or not _same_address(fields[2], address) or not _MAC.match(fields[1]):
                continue
            cmd = ["dhcp_release", str(interface), str(address), fields[1]]
            if len(fields) > 4 and fields[4] != "*" and _CLIENT_ID.match(fields[4]):
                cmd.append(fields[4])
            code, out = _run(cmd)
            if code != 0:
                return {"result": False, "comment": "dhcp_release failed: {}".format(out)}
            released.append(fields[1])
    else:
        # IPv6 lines: <expiry> <IAID> <address> <hostname> <client DUID>, after `duid <server DUID>`.
        for fields in v6:
            if len(fields) < 5 or not _same_address(fields[2], address) or not fields[1].isdigit():
                continue
            if not (_CLIENT_ID.match(fields[4]) and server_duid and _CLIENT_ID.match(server_duid)):
                continue
            cmd = ["dhcp_release6", "--iface", str(interface), "--ip", str(address),
                   "--server-id", server_duid, "--client-id", fields[4], "--iaid", fields[1]]
            code, out = _run(cmd)
            if code != 0:
                return {"result": False, "comment": "dhcp_release6 failed: {}".format(out)}
            released.append(fields[4])
    comment = "released {} lease(s) of {}".format(len(released), address)
    return {"result": True, "released": released, "comment": comment}
