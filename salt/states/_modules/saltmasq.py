"""
saltmasq's helpers on the minion that runs dnsmasq, called by saltmasq through salt-api.

Install: put this file in ``<file_roots>/_modules/`` (``/srv/salt/_modules/`` on a stock
master) and run ``salt <dnsmasq minion> saltutil.sync_modules``.

No function takes a path to read or signal from its caller, and ``publish`` writes only the
files configured for it, by role, and only reservation lines: an eauth user allowed to call
them could otherwise signal any process, read or write any file as root, or hand dnsmasq a
directive (``conf-script=`` runs a command as root when ``dnsmasq --test`` reads it). Paths come
from the minion's configuration or its pillar (``config.get``), under ``saltmasq:dnsmasq``:

    pidfile       /run/dnsmasq/dnsmasq.pid      the dnsmasq to SIGHUP when there is no service manager
    leasefile     /var/lib/misc/dnsmasq.leases  where dnsmasq keeps its leases
    conf_file     (dnsmasq's default)           the configuration ``dnsmasq --test`` checks
    reload        auto                          auto: ``service.reload`` under systemd, else the
                                                pid file; or always ``service`` / ``pidfile``
    files         (none)                        what ``publish`` may write, by role: a mapping of
                                                ``dhcp-hosts``, ``addn-hosts`` and
                                                ``reservations-conf`` to a path each; a role not
                                                set is refused (nothing is written until one is)

Every argument is checked before it reaches a command line, and commands run without a shell.
A function that cannot do its job raises ``CommandExecutionError`` (``SaltInvocationError`` for a
bad argument), as Salt's own modules do.

:depends: dnsmasq (``dnsmasq-base``); ``dhcp_release`` and ``dhcp_release6`` (``dnsmasq-utils``)
    for ``release_lease``
"""
import base64
import binascii
import hashlib
import ipaddress
import logging
import os
import re
import signal
import tempfile
import zlib

import salt.utils.path
import salt.utils.systemd
from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "saltmasq"

_INTERFACE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
_MAC = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")
_CLIENT_ID = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2})*$")
_DEFAULTS = {
    "pidfile": "/run/dnsmasq/dnsmasq.pid",
    "leasefile": "/var/lib/misc/dnsmasq.leases",
    "conf_file": None,
    "reload": "auto",
    "files": {},
}
# What each role's lines may be (besides blank lines and comments): reservations, nothing else.
_LABEL = r"(?!..--)[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST_NAME = re.compile(r"^{0}(?:\.{0})*$".format(_LABEL))
_NOT_A_NAME = re.compile(r"^(\d+[smhdw]?|infinite|ignore)$", re.IGNORECASE)
_ROLES = ("dhcp-hosts", "addn-hosts", "reservations-conf")
_APPLY = ("none", "reload", "checked-restart")
# The largest file a compressed ``deflate`` may expand to: a hostsfile of a million reservations.
_MAX_FILE_BYTES = 256 * 1024 * 1024


def __virtual__():
    """
    Only on a minion with dnsmasq installed.
    """
    if salt.utils.path.which("dnsmasq"):
        return __virtualname__
    return (False, "The saltmasq module cannot be loaded: dnsmasq is not installed.")


def _run(cmd):
    """Runs ``cmd`` (a list, no shell); its exit code and its output, stdout then stderr."""
    ret = __salt__["cmd.run_all"](cmd, python_shell=False, ignore_retcode=True, timeout=60)
    out = "\n".join(part for part in (ret.get("stdout"), ret.get("stderr")) if part)
    return ret["retcode"], out.strip()


def _setting(name):
    """``saltmasq:dnsmasq:<name>`` from the minion's config or pillar, else the default."""
    value = __salt__["config.get"]("saltmasq:dnsmasq:" + name, None)
    return _DEFAULTS[name] if value in (None, "") else value


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

    CLI Example:

    .. code-block:: bash

        salt dns01 saltmasq.reload
    """
    how = _setting("reload")
    if how == "service" or (how == "auto" and salt.utils.systemd.booted(__context__)):
        if not __salt__["service.reload"]("dnsmasq"):
            raise CommandExecutionError("service.reload dnsmasq failed")
        return True
    pidfile = _setting("pidfile")
    try:
        with open(pidfile, encoding="ascii") as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError) as exc:
        raise CommandExecutionError("cannot read dnsmasq's pid from {}: {}".format(pidfile, exc))
    if pid <= 1 or not _is_dnsmasq(pid):
        raise CommandExecutionError("{} names pid {}, which is not a running dnsmasq".format(pidfile, pid))
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as exc:
        raise CommandExecutionError("cannot signal dnsmasq pid {}: {}".format(pid, exc))
    log.debug("saltmasq: sent SIGHUP to dnsmasq pid %s (%s)", pid, pidfile)
    return True


def check():
    """
    ``dnsmasq --test``: does dnsmasq accept its configuration (conf-dir files included)?
    True, or ``CommandExecutionError`` with what dnsmasq said.

    CLI Example:

    .. code-block:: bash

        salt dns01 saltmasq.check
    """
    cmd = ["dnsmasq", "--test"]
    conf_file = _setting("conf_file")
    if conf_file is not None:
        cmd.append("--conf-file={}".format(conf_file))
    code, out = _run(cmd)
    if code != 0:
        raise CommandExecutionError("dnsmasq --test: {}".format(out))
    return True


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

    CLI Example:

    .. code-block:: bash

        salt dns01 saltmasq.release_lease 10.0.0.5 interface=br0
    """
    try:
        address = ipaddress.ip_address(str(ip))
    except ValueError:
        raise SaltInvocationError("not an IP address: {!r}".format(ip))
    if not _INTERFACE.match(str(interface)):
        raise SaltInvocationError("not an interface name: {!r}".format(interface))
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
                raise CommandExecutionError("dhcp_release failed: {}".format(out))
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
                raise CommandExecutionError("dhcp_release6 failed: {}".format(out))
            released.append(fields[4])
    log.info("saltmasq: released %d lease(s) of %s", len(released), address)
    return {"released": released, "comment": "released {} lease(s) of {}".format(len(released), address)}


def _role_paths():
    """The path set for each role, when it is one ``publish`` may write (absolute, not a link)."""
    files = _setting("files")
    paths = {}
    if not isinstance(files, dict):
        return paths
    for role, path in files.items():
        if role not in _ROLES or not isinstance(path, str) or not os.path.isabs(path) or os.path.normpath(path) != path:
            continue
        if os.path.islink(path) or (os.path.exists(path) and not os.path.isfile(path)):
            continue
        paths[role] = path
    return paths


def _is_name(text):
    return len(text) <= 253 and bool(_HOST_NAME.match(text)) and not _NOT_A_NAME.match(text) and _address(text) is None


def _address(text):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _dhcp_host(fields):
    """``name,ip`` or ``mac,ip,name`` (an IPv6 address in brackets): what saltmasq writes."""
    parts = fields.split(",")
    if len(parts) == 3 and not _MAC.match(parts[0]):
        return False
    if len(parts) not in (2, 3):
        return False
    ip, name = (parts[1], parts[0]) if len(parts) == 2 else (parts[1], parts[2])
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
        ok_ip = _address(ip) is not None and _address(ip).version == 6
    else:
        ok_ip = _address(ip) is not None and _address(ip).version == 4
    return ok_ip and _is_name(name)


def _hosts_line(line):
    parts = line.split(" ")
    return len(parts) >= 2 and _address(parts[0]) is not None and all(_is_name(n) for n in parts[1:])


def _line_ok(role, line):
    if line == "" or line.startswith("#"):
        return True
    if role == "dhcp-hosts":
        return _dhcp_host(line)
    if role == "reservations-conf":
        return line.startswith("dhcp-host=") and _dhcp_host(line[len("dhcp-host="):])
    return _hosts_line(line)


def _content_problem(role, data):
    """Why ``data`` is not a file of reservation lines for ``role``, or None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "it is not UTF-8"
    if "\r" in text or "\x00" in text:
        return "it holds a carriage return or a NUL"
    for number, line in enumerate(text.split("\n"), start=1):
        if not _line_ok(role, line):
            return "line {} is not a {} reservation line: {!r}".format(number, role, line[:80])
    return None


def _read_bytes(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _digest(data):
    return None if data is None else hashlib.sha256(data).hexdigest()


def _write_atomic(path, data):
    """Temp file beside it (a dot-name, which dnsmasq's directory watch skips), fsync, rename, fsync the directory."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _put_back(path, data):
    if data is None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    else:
        _write_atomic(path, data)


def _patched(current, hunks):
    """``current`` (bytes) with ``hunks`` ([start, delete, [lines]] against its lines) applied, or None."""
    text = current.decode("utf-8")
    lines = text[:-1].split("\n") if text.endswith("\n") else ([text] if text else [])
    try:
        parsed = [(int(h[0]), int(h[1]), list(h[2])) for h in hunks]
    except (TypeError, ValueError, IndexError):
        return None
    # In order and apart (each ends before the next starts), then applied from the last one back
    # so that every start still counts in the base's lines.
    end = len(lines)
    for start, delete, insert in reversed(parsed):
        if start < 0 or delete < 0 or start + delete > end or not all(isinstance(x, str) and "\n" not in x for x in insert):
            return None
        if delete == 0 and start == end and end != len(lines):
            return None
        lines[start:start + delete] = insert
        end = start
    return "".join(line + "\n" for line in lines).encode("utf-8")


def _inflated(text):
    """``deflate`` content (zlib, then base64) expanded, or None when it is not that or too large."""
    try:
        inflater = zlib.decompressobj()
        data = inflater.decompress(base64.b64decode(text, validate=True), _MAX_FILE_BYTES)
    except (binascii.Error, ValueError, TypeError, zlib.error):
        return None
    return data if inflater.eof and not inflater.unconsumed_tail else None


def _dnsmasq_takes_in(apply, changed, report):
    """
    Make dnsmasq take the written files in: a reload, or a check and then a restart. When the
    check fails the previous files are put back before the error is raised.
    """
    if apply == "reload":
        reload()
        return "saltmasq.reload"
    try:
        check()
    except CommandExecutionError as exc:
        for role, path, current in changed:
            _put_back(path, current)
            report[role] = {"status": "rolled-back", "hash": _digest(current)}
        raise CommandExecutionError(
            "dnsmasq --test rejected the files, so the previous ones were put back: {}".format(exc)
        )
    if not __salt__["service.restart"]("dnsmasq"):
        raise CommandExecutionError("service.restart dnsmasq failed")
    return "service.restart dnsmasq"


def publish(files, apply="none", force_apply=False):
    """
    Make files saltmasq renders hold their new content, and have dnsmasq take them in, in one
    call. Each file is ``{"role", "hash"}`` (the sha256 of the content wanted) with either
    ``"content"`` (the whole file), ``"deflate"`` (the whole file, zlib-compressed and base64)
    or ``"base"`` (the sha256 of the content the caller last saw here) and ``"hunks"``
    (``[start, delete, [lines]]`` against that content's lines). A file
    whose content is not ``base`` (new minion, restored or hand-edited file) is reported
    ``stale`` with its hash and nothing is written: the caller sends it whole. Files are
    written only if their content changes (temp file, fsync, rename, fsync directory), only
    at the path ``saltmasq:dnsmasq:files`` sets for their role, and only when every line is a
    reservation line of that role (``dhcp-hosts``: ``name,ip`` or ``mac,ip,name``;
    ``reservations-conf``: the same after ``dhcp-host=``; ``addn-hosts``: ``ip name...``):
    anything else refuses the whole call before a file is written or checked.

    ``apply``: ``none`` (dnsmasq reads them itself), ``reload`` (``saltmasq.reload``) or
    ``checked-restart`` (``dnsmasq --test``, then ``service.restart dnsmasq``; the previous files
    are put back when the check fails, and the call fails). dnsmasq is told only when a file changed, or when
    ``force_apply`` says it still owes an earlier change.

    Returns ``{"result": True, "files": {role: {"status", "hash"}}, "applied", "comment"}``, or
    ``{"result": False, "stale": True, "files": ...}`` when some file must be sent whole. Anything
    refused raises ``CommandExecutionError`` (``SaltInvocationError`` for a bad argument).

    CLI Example:

    .. code-block:: bash

        salt dns01 saltmasq.publish '[{"role": "dhcp-hosts", "hash": "...", "content": "..."}]' apply=reload
    """
    if apply not in _APPLY:
        raise SaltInvocationError("apply must be one of {}, not {!r}".format(", ".join(_APPLY), apply))
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        raise SaltInvocationError("files must be a list of objects")
    paths = _role_paths()
    if not paths:
        raise CommandExecutionError("saltmasq:dnsmasq:files is not set on this minion: nothing may be written")
    plan, report, stale = [], {}, False
    for spec in files:
        role = spec.get("role")
        path = paths.get(role) if isinstance(role, str) else None
        if path is None:
            raise CommandExecutionError(
                "refused role {!r}: saltmasq:dnsmasq:files sets a path only for {}".format(role, ", ".join(sorted(paths)))
            )
        current = _read_bytes(path)
        if "content" in spec:
            wanted = spec["content"].encode("utf-8") if isinstance(spec["content"], str) else None
        elif "deflate" in spec:
            wanted = _inflated(spec["deflate"])
        elif spec.get("base") is not None and spec.get("base") == _digest(current):
            wanted = _patched(current, spec.get("hunks") or [])
        else:
            wanted = None
        if wanted is None or _digest(wanted) != spec.get("hash"):
            report[role] = {"status": "stale", "hash": _digest(current)}
            stale = True
            continue
        problem = _content_problem(role, wanted)
        if problem is not None:
            log.warning("saltmasq: publish refused: %s: %s", role, problem)
            raise CommandExecutionError("refused {}: {}; nothing was written".format(role, problem))
        plan.append((role, path, current, wanted))
    if stale:
        for role, _, current, _ in plan:
            report[role] = {"status": "pending", "hash": _digest(current)}
        return {"result": False, "stale": True, "files": report, "applied": False,
                "comment": "not the content the caller last saw: send these files whole"}
    changed = []
    for role, path, current, wanted in plan:
        if current != wanted:
            _write_atomic(path, wanted)
            changed.append((role, path, current))
        report[role] = {"status": "written" if current != wanted else "unchanged", "hash": _digest(wanted)}
    if apply == "none" or not (changed or force_apply):
        return {"result": True, "files": report, "applied": False, "comment": "{} file(s) written".format(len(changed))}
    how = _dnsmasq_takes_in(apply, changed, report)
    log.info("saltmasq: %d file(s) written; %s", len(changed), how)
    return {"result": True, "files": report, "applied": True, "comment": "{} file(s) written; {}".format(len(changed), how)}
