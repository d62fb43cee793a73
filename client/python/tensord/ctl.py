"""tensordctl: the administration command of a tensord daemon.

    tensordctl [--address ADDR] [--token-file F] [--json] COMMAND

Commands: status, sessions, kill ID, quotas, quota USER [--max-bytes N] [--max-tensors N]
[--max-sessions N] [--max-concurrency N] | --unlimited], drain, shutdown, health. The token comes from
--token-file (a file holding just the token) or $TENSORD_TOKEN; the address from --address
or $TENSORD_ADDRESS, else unix:///run/tensord/tensord.sock. Every command except health
needs a session with role admin (docs/PROTOCOL.md, methods 8-13 and 15).
TLS (a daemon with --tls-cert): a tls://host:port address or any of --tls-ca (the CA file that
signed the daemon's certificate), --tls-cert/--tls-key (a client certificate for mutual TLS).

Exit status: 0 done (health: SERVING); 1 the daemon refused the request, could not be
reached, or (health) is NOT_SERVING; 2 bad usage or an unreadable token file; 3 permission
denied or authentication failed (no admin token).
"""
import argparse
import json
import os
import re
import sys

from . import _wire
from .client import Client, probe_health

DEFAULT_ADDRESS = "unix:///run/tensord/tensord.sock"
CLIENT_NAME = "tensordctl/0.1.0"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DENIED = 0, 1, 2, 3

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class UsageError(Exception):
    """A bad option value or token file (exit status 2)."""


def parse_size(text):
    """Returns: the byte count of "1048576", "512K", "64MiB", "4G" (binary units).
    Raises argparse.ArgumentTypeError."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgGtT]?)(i?[bB])?\s*", text)
    if m is None or (m.group(3) and not m.group(2) and m.group(3).lower() == "ib"):
        raise argparse.ArgumentTypeError(
            "%r is not a size: use an integer of bytes or K, M, G, T (KiB, MiB, ...)" % text)
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def parse_count(text):
    """Returns: a non-negative integer. Raises argparse.ArgumentTypeError."""
    if not re.fullmatch(r"\s*\d+\s*", text):
        raise argparse.ArgumentTypeError("%r is not a non-negative integer" % text)
    return int(text)


def read_token_file(path):
    """Returns: the token a client token file holds (its first line that is neither empty
    nor a # comment, without surrounding blanks). Raises UsageError."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError("cannot read token file %s: %s" % (path, e)) from None
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if len(line.split()) != 1:
            raise UsageError("token file %s: expected the token alone on a line, got several "
                             "fields (is this the daemon's 'TOKEN USER ROLE' file?)" % path)
        return line
    raise UsageError("token file %s holds no token" % path)


def human_bytes(n):
    """Returns: n bytes as "512 B", "1.5 KiB", "3.0 GiB"."""
    if n < 1024:
        return "%d B" % n
    v = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        v /= 1024.0
        if v < 1024.0 or unit == "PiB":
            return "%.1f %s" % (v, unit)
    return "%d B" % n


def human_age(s):
    s = int(s)
    if s < 60:
        return "%ds" % s
    if s < 3600:
        return "%dm%02ds" % (s // 60, s % 60)
    if s < 86400:
        return "%dh%02dm" % (s // 3600, s % 3600 // 60)
    return "%dd%02dh" % (s // 86400, s % 86400 // 3600)


def table(headers, rows, right=()):
    """Returns: the rows as aligned text columns (columns in `right` right-aligned)."""
    cells = [list(headers)] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for r in cells:
        parts = [(c.rjust(w) if i in right else c.ljust(w))
                 for i, (c, w) in enumerate(zip(r, widths))]
        out.append("  ".join(parts).rstrip())
    return "\n".join(out)


def per_user(sessions):
    """Returns: {user: {"sessions", "tensors", "bytes"}} summed over `sessions` (a session
    before its handshake counts under "")."""
    users = {}
    for s in sessions:
        u = users.setdefault(s["user"], {"sessions": 0, "tensors": 0, "bytes": 0})
        u["sessions"] += 1
        u["tensors"] += s["tensors"]
        u["bytes"] += s["bytes"]
    return users


# ---- commands ---------------------------------------------------------------------------
# Each returns (object for --json, text for people, exit status).

def cmd_status(c, args):
    info = {"address": c.address, "health": c.health(), "server_version": c.server_version,
            "protocol_version": c.protocol_version, "devices": c.device_info,
            "user": c.user, "role": c.role, "session_id": c.session_id}
    lines = ["address   %s" % c.address,
             "health    %s" % info["health"],
             "server    tensord %s (protocol %d)" % (c.server_version or "?", c.protocol_version)]
    for d in c.device_info:
        extra = ", ".join(x for x in (d["model"], human_bytes(d["memory_bytes"])
                                      if d["memory_bytes"] else "") if x)
        lines.append("device    %s%s" % (d["name"], " (%s)" % extra if extra else ""))
    lines.append("you       %s (%s), session %d" % (c.user, c.role, c.session_id))
    try:
        sessions = c.list_sessions()
    except _wire.PermissionDenied as e:
        info["sessions"] = None
        info["error"] = str(e)
        lines.append("sessions  unknown: %s" % e)
        return info, "\n".join(lines), EXIT_DENIED
    others = [s for s in sessions if s["id"] != c.session_id]
    users = per_user(others)
    info["sessions"] = len(others)
    info["bytes"] = sum(s["bytes"] for s in others)
    info["tensors"] = sum(s["tensors"] for s in others)
    info["users"] = users
    lines.append("sessions  %d (besides this one), %d tensors, %s" % (
        len(others), info["tensors"], human_bytes(info["bytes"])))
    if users:
        rows = [(u or "(no handshake)", v["sessions"], v["tensors"], human_bytes(v["bytes"]),
                 v["bytes"]) for u, v in sorted(users.items())]
        lines.append("")
        lines.append(table(("USER", "SESSIONS", "TENSORS", "MEMORY", "BYTES"), rows,
                           right=(1, 2, 3, 4)))
    return info, "\n".join(lines), EXIT_OK


def cmd_sessions(c, args):
    sessions = c.list_sessions()
    for s in sessions:
        s["self"] = s["id"] == c.session_id
    def peer(s):
        if s["parked_seconds_left"] > 0:
            return "parked, %s left" % human_age(s["parked_seconds_left"])
        return s["peer"]
    rows = [("%d%s" % (s["id"], "*" if s["self"] else ""), s["user"] or "-", peer(s),
             s["tensors"], human_bytes(s["bytes"]), s["bytes"], human_age(s["age_seconds"]))
            for s in sessions]
    text = table(("ID", "USER", "PEER", "TENSORS", "MEMORY", "BYTES", "AGE"), rows,
                 right=(3, 4, 5, 6))
    text += "\n(* this tensordctl session; user - : before its handshake)"
    return sessions, text, EXIT_OK


def cmd_kill(c, args):
    c.kill_session(args.session_id)
    return ({"killed": args.session_id}, "killed session %d" % args.session_id, EXIT_OK)


def _limit(v, fmt=str):
    return fmt(v) if v else "unlimited"


def cmd_quota(c, args):
    q = {"max_bytes": args.max_bytes or 0, "max_tensors": args.max_tensors or 0,
         "max_sessions": args.max_sessions or 0,
         "max_concurrency": args.max_concurrency or 0}
    c.set_quota(args.user, **q)
    text = ("quota of %s: max_bytes %s, max_tensors %s, max_sessions %s, max_concurrency %s"
            % (args.user, _limit(q["max_bytes"], lambda v: "%d (%s)" % (v, human_bytes(v))),
               _limit(q["max_tensors"]), _limit(q["max_sessions"]),
               q["max_concurrency"] or "daemon default"))
    return dict(user=args.user, **q), text, EXIT_OK


def cmd_quotas(c, args):
    users = c.list_users()

    def used(v, m, fmt=str):
        return "%s / %s" % (fmt(v), _limit(m, fmt))
    rows = [(u["name"], "admin" if u["admin"] else "user",
             used(u["sessions"], u["max_sessions"]), used(u["tensors"], u["max_tensors"]),
             used(u["bytes"], u["max_bytes"], human_bytes), human_bytes(u["peak_bytes"]),
             used(u["running"], u["max_concurrency"]))
            for u in users]
    text = table(("USER", "ROLE", "SESSIONS", "TENSORS", "MEMORY (cpu)", "PEAK", "WORKERS"),
                 rows, right=(2, 3, 4, 5, 6))
    return users, text, EXIT_OK


def cmd_drain(c, args):
    c.drain()
    return ({"draining": True},
            "draining: new connections are refused; the daemon exits once its sessions are "
            "idle (or after its --drain-timeout)", EXIT_OK)


def cmd_shutdown(c, args):
    c.shutdown()
    return {"shutdown": True}, "shutdown requested: the daemon is stopping", EXIT_OK


COMMANDS = {"status": cmd_status, "sessions": cmd_sessions, "kill": cmd_kill,
            "quota": cmd_quota, "quotas": cmd_quotas, "drain": cmd_drain, "shutdown": cmd_shutdown}


def build_parser():
    p = argparse.ArgumentParser(
        prog="tensordctl", description="Administer a tensord daemon.",
        epilog="Exit status: 0 ok; 1 refused, unreachable or NOT_SERVING; 2 usage; "
               "3 permission denied or authentication failed.")
    p.add_argument("--address", default=None,
                   help="daemon address: unix:///path, tcp://host:port, tls://host:port, "
                        "host:port (default: $TENSORD_ADDRESS, else %s)" % DEFAULT_ADDRESS)
    p.add_argument("--tls-ca", default=None, metavar="FILE",
                   help="TLS: PEM CA certificates that verify the daemon's certificate "
                        "(implies TLS; default for tls:// addresses: the system's CAs)")
    p.add_argument("--tls-cert", default=None, metavar="FILE",
                   help="TLS: PEM client certificate for a daemon with --tls-client-ca")
    p.add_argument("--tls-key", default=None, metavar="FILE",
                   help="TLS: the client certificate's PEM key (default: in --tls-cert)")
    p.add_argument("--token-file", default=None,
                   help="file holding the admin token (default: $TENSORD_TOKEN)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for the connection (default 10)")
    p.add_argument("--json", action="store_true", default=False,
                   help="print JSON instead of tables")
    # --json is accepted after the command too; SUPPRESS keeps the global value otherwise.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON instead of tables")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    sub.add_parser("status", parents=[common],
                   help="health, version, devices, sessions and memory per user")
    sub.add_parser("sessions", parents=[common], help="list open sessions")
    k = sub.add_parser("kill", parents=[common], help="close a session and free its tensors")
    k.add_argument("session_id", type=parse_count, metavar="ID")
    q = sub.add_parser("quota", parents=[common],
                       help="replace a user's quotas (omitted limits become unlimited)")
    q.add_argument("user")
    q.add_argument("--max-bytes", type=parse_size, metavar="N",
                   help="tensor memory over all the user's sessions (e.g. 4G, 512MiB)")
    q.add_argument("--max-tensors", type=parse_count, metavar="N", help="live tensor ids")
    q.add_argument("--max-sessions", type=parse_count, metavar="N",
                   help="concurrent sessions")
    q.add_argument("--max-concurrency", type=parse_count, metavar="N",
                   help="workers the user's sessions may hold at once (default: the "
                        "daemon's --user-max-concurrency)")
    q.add_argument("--unlimited", action="store_true",
                   help="remove every limit of the user (0 for all; concurrency back to the "
                        "daemon's default)")
    sub.add_parser("quotas", parents=[common],
                   help="every user's usage against its quotas (sessions, tensors, memory, "
                        "workers)")
    sub.add_parser("drain", parents=[common], help="start a graceful stop")
    sub.add_parser("shutdown", parents=[common], help="stop the daemon (as SIGTERM)")
    sub.add_parser("health", parents=[common],
                   help="SERVING or NOT_SERVING (needs no token; exit 1 unless SERVING)")
    return p


def _emit(args, obj, text):
    if args.json:
        print(json.dumps(obj, indent=2, sort_keys=True))
    else:
        print(text)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = "tensordctl"
    if args.command == "quota":
        given = [x is not None for x in (args.max_bytes, args.max_tensors, args.max_sessions,
                                         args.max_concurrency)]
        if args.unlimited == any(given):
            parser.error("quota: give --max-bytes, --max-tensors, --max-sessions and/or "
                         "--max-concurrency (the ones omitted become unlimited), or "
                         "--unlimited alone")
    address = args.address or os.environ.get("TENSORD_ADDRESS") or DEFAULT_ADDRESS
    try:
        token = read_token_file(args.token_file) if args.token_file else None
    except UsageError as e:
        print("%s: %s" % (prog, e), file=sys.stderr)
        return EXIT_USAGE

    tls_kw = {"tls_ca": args.tls_ca, "tls_cert": args.tls_cert, "tls_key": args.tls_key}
    if args.command == "health":
        try:
            state = probe_health(address, timeout=args.timeout, **tls_kw)
        except (_wire.TensordError, ValueError) as e:
            print("%s: health: %s" % (prog, e), file=sys.stderr)
            return EXIT_ERROR
        _emit(args, {"address": address, "health": state}, state)
        return EXIT_OK if state == "SERVING" else EXIT_ERROR

    try:
        c = Client(address, timeout=args.timeout, client_name=CLIENT_NAME, token=token,
                   **tls_kw)
    except (_wire.Unauthenticated, _wire.PermissionDenied) as e:
        print("%s: %s: %s (check --token-file or $TENSORD_TOKEN)" % (prog, address, e),
              file=sys.stderr)
        return EXIT_DENIED
    except (_wire.TensordError, ValueError) as e:
        print("%s: %s: %s" % (prog, address, e), file=sys.stderr)
        return EXIT_ERROR
    try:
        obj, text, rc = COMMANDS[args.command](c, args)
    except _wire.PermissionDenied as e:
        print("%s: %s: permission denied: user %r has role %r, this command needs an admin "
              "token (%s)" % (prog, args.command, c.user, c.role, e.message), file=sys.stderr)
        return EXIT_DENIED
    except _wire.TensordError as e:
        print("%s: %s: %s" % (prog, args.command, e), file=sys.stderr)
        return EXIT_ERROR
    finally:
        c.close()
    _emit(args, obj, text)
    if rc == EXIT_DENIED:
        print("%s: %s: permission denied: user %r has role %r; the session list needs an "
              "admin token" % (prog, args.command, c.user, c.role), file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
