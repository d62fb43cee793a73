"""tensordctl and the Client's admin methods against a real daemon with a token file.

Every subcommand runs through the installed `tensordctl` console script (a subprocess) and
through the Client methods (list_sessions, kill_session, set_quota, drain, shutdown,
health). Expected values come from what the test itself uploaded (numel * itemsize), from
os.sysconf (the cpu device's memory) and from the daemon's Stats reply, never from the
command's own output.
"""
import json
import os
import subprocess
import sys
import sysconfig
import time

import numpy as np
import pytest

import tdtest_daemon

ADMIN_TOKEN = "adm-0123456789abcdef0123"
ALICE_TOKEN = "alice-0123456789abcdef01"
BOB_TOKEN = "bob-0123456789abcdef0123"


def _script():
    path = os.path.join(sysconfig.get_path("scripts"), "tensordctl")
    if not os.access(path, os.X_OK):
        pytest.fail("the tensordctl console script is not installed next to %s: "
                    "pip install client/python" % sys.executable)
    return path


class Env:
    """A daemon with a token file (root admin, alice and bob users) and client token files."""

    def __init__(self, tmp_path, extra_args=()):
        tokens = tmp_path / "tokens"
        tokens.write_text("%s root admin\n%s alice user\n%s bob user\n"
                          % (ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN))
        os.chmod(tokens, 0o600)
        self.daemon_tokens = str(tokens)
        self.admin_file = str(tmp_path / "admin.token")
        self.alice_file = str(tmp_path / "alice.token")
        with open(self.admin_file, "w") as f:
            f.write("# tensordctl admin token\n%s\n" % ADMIN_TOKEN)
        with open(self.alice_file, "w") as f:
            f.write(ALICE_TOKEN + "\n")
        self.d = tdtest_daemon.Daemon(["--token-file", self.daemon_tokens]
                                      + list(extra_args))
        self.addr = self.d.unix_address
        self.clients = []

    def connect(self, token, address=None):
        import tensord as td
        c = td.connect(address or self.addr, token=token, set_default=False)
        self.clients.append(c)
        return c

    def ctl(self, *args, token_file=None, env_token=None, address=True, timeout=60):
        """Runs tensordctl. Returns: CompletedProcess (text stdout/stderr)."""
        cmd = [_script()]
        if address:
            cmd += ["--address", self.addr]
        if token_file:
            cmd += ["--token-file", token_file]
        env = {k: v for k, v in os.environ.items()
               if k not in ("TENSORD_TOKEN", "TENSORD_ADDRESS")}
        if env_token is not None:
            env["TENSORD_TOKEN"] = env_token
        if address not in (True, False):
            env["TENSORD_ADDRESS"] = address
        return subprocess.run(cmd + list(args), capture_output=True, text=True, env=env,
                              timeout=timeout)

    def admin(self, *args, **kw):
        return self.ctl(*args, token_file=self.admin_file, **kw)

    def close(self):
        for c in self.clients:
            c.close()
        self.d.stop_and_check()


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    _KEEP.clear()
    e.close()


def _ok(r):
    assert r.returncode == 0, "rc %d\nstdout:\n%s\nstderr:\n%s" % (r.returncode, r.stdout,
                                                                    r.stderr)
    return r


_KEEP = []


def _upload(c, *arrays):
    """Uploads arrays and waits; the tensors stay alive (a dropped Tensor is freed) until
    the next test's fixture clears them."""
    ts = [c.upload(a) for a in arrays]
    _KEEP.append(ts)
    c.sync()
    return ts


def test_console_script_help():
    r = _ok(subprocess.run([_script(), "--help"], capture_output=True, text=True, timeout=60))
    for cmd in ("status", "sessions", "kill", "quota", "quotas", "drain", "shutdown",
                "health"):
        assert cmd in r.stdout


def test_health_without_token(env):
    r = _ok(env.ctl("health"))
    assert r.stdout.strip() == "SERVING"
    r = _ok(env.ctl("health", "--json"))
    assert json.loads(r.stdout) == {"address": env.addr, "health": "SERVING"}
    # The Client method works for any role.
    assert env.connect(ALICE_TOKEN).health() == "SERVING"
    assert env.connect(ADMIN_TOKEN).health() == "SERVING"


def test_status_reports_version_devices_and_bytes_per_user(env):
    alice1 = env.connect(ALICE_TOKEN)
    alice2 = env.connect(ALICE_TOKEN)
    bob = env.connect(BOB_TOKEN)
    held = [
        _upload(alice1, np.zeros(100, np.float32), np.ones((3, 5), np.float64)),  # 400+120
        _upload(alice2, np.arange(7, dtype=np.int16)),                             # 14
        _upload(bob, np.zeros((4, 4, 4), np.complex64)),                           # 512
    ]
    want_users = {"alice": {"sessions": 2, "tensors": 3, "bytes": 400 + 120 + 14},
                  "bob": {"sessions": 1, "tensors": 1, "bytes": 512}}
    stats = bob.stats()
    r = _ok(env.admin("--json", "status"))
    st = json.loads(r.stdout)
    assert st["health"] == "SERVING"
    assert st["server_version"] == stats["server_version"] and st["server_version"]
    assert st["protocol_version"] == 1
    assert (st["user"], st["role"]) == ("root", "admin")
    cpu = [d for d in st["devices"] if d["name"] == "cpu"]
    assert len(cpu) == 1
    assert cpu[0]["memory_bytes"] == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert st["sessions"] == 3                    # besides tensordctl's own
    assert st["users"] == want_users
    assert st["bytes"] == 400 + 120 + 14 + 512 and st["tensors"] == 4
    # The table: one row per user with the exact byte count in the last column.
    r = _ok(env.admin("status"))
    assert "SERVING" in r.stdout and stats["server_version"] in r.stdout
    rows = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines()
            if ln.split() and ln.split()[0] in ("alice", "bob")}
    assert rows["alice"][1:3] == ["2", "3"] and rows["alice"][-1] == "534"
    assert rows["bob"][1:3] == ["1", "1"] and rows["bob"][-1] == "512"
    del held


def test_sessions_cli_and_method(env):
    alice = env.connect(ALICE_TOKEN)
    bob_tcp = env.connect(BOB_TOKEN, address=env.d.tcp_address)
    _upload(alice, np.zeros((2, 8), np.float32))      # 64 bytes
    admin = env.connect(ADMIN_TOKEN)
    by_id = {s["id"]: s for s in admin.list_sessions()}
    assert set(by_id) == {alice.session_id, bob_tcp.session_id, admin.session_id}
    a = by_id[alice.session_id]
    assert (a["user"], a["bytes"], a["tensors"], a["peer"]) == ("alice", 64, 1, "unix")
    b = by_id[bob_tcp.session_id]
    assert (b["user"], b["bytes"], b["tensors"]) == ("bob", 0, 0)
    assert b["peer"].startswith("127.0.0.1:")
    assert a["age_seconds"] >= 0.0 and a["age_seconds"] < 600.0

    r = _ok(env.admin("sessions", "--json"))
    rows = json.loads(r.stdout)
    mine = [s for s in rows if s["self"]]
    assert len(mine) == 1 and mine[0]["user"] == "root"
    assert mine[0]["id"] not in (alice.session_id, bob_tcp.session_id, admin.session_id)
    others = {s["id"]: s for s in rows if not s["self"]}
    assert set(others) == set(by_id)
    assert others[alice.session_id]["bytes"] == 64
    r = _ok(env.admin("sessions"))
    line = [ln for ln in r.stdout.splitlines() if ln.split()[:1] == [str(alice.session_id)]]
    assert len(line) == 1 and line[0].split()[1] == "alice" and line[0].split()[-2] == "64"


def test_sessions_lists_and_kills_a_parked_session(env):
    import tensord as td
    alice = td.Client(env.d.tcp_address, token=ALICE_TOKEN, resume_lease=120)
    _upload(alice, np.zeros(16, np.float32))            # 64 bytes
    sid = alice.session_id
    tdtest_daemon.lose_connection(alice)
    admin = env.connect(ADMIN_TOKEN)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        parked = [x for x in admin.list_sessions()
                  if x["id"] == sid and x["parked_seconds_left"] > 0]
        if parked:
            break
        time.sleep(0.02)
    assert parked and parked[0]["peer"] == "" and parked[0]["bytes"] == 64
    assert 100 < parked[0]["parked_seconds_left"] <= 120
    r = _ok(env.admin("sessions"))
    line = [ln for ln in r.stdout.splitlines() if ln.split()[:1] == [str(sid)]]
    assert len(line) == 1 and "parked," in line[0] and "left" in line[0], r.stdout
    _ok(env.admin("kill", str(sid)))
    assert not any(x["id"] == sid for x in admin.list_sessions())
    with pytest.raises(td.NotFound):
        alice.reconnect()


def test_kill_cli_and_method(env):
    import tensord as td
    victim = env.connect(ALICE_TOKEN)
    _upload(victim, np.zeros(10, np.float64))
    r = _ok(env.admin("kill", str(victim.session_id)))
    assert str(victim.session_id) in r.stdout
    with pytest.raises(td.Unavailable):
        victim.stats()
    admin = env.connect(ADMIN_TOKEN)
    assert victim.session_id not in [s["id"] for s in admin.list_sessions()]

    victim2 = env.connect(BOB_TOKEN)
    admin.kill_session(victim2.session_id)
    with pytest.raises(td.Unavailable):
        victim2.stats()
    assert [s["id"] for s in admin.list_sessions()] == [admin.session_id]

    with pytest.raises(td.NotFound):
        admin.kill_session(999999)
    with pytest.raises(td.InvalidArgument):
        admin.kill_session(admin.session_id)
    r = env.admin("kill", "999999")
    assert r.returncode == 1 and "NOT_FOUND" in r.stderr
    r = env.admin("kill", "abc")
    assert r.returncode == 2 and "not a non-negative integer" in r.stderr


def test_quota_cli_and_method(env):
    import tensord as td
    alice = env.connect(ALICE_TOKEN)
    _ok(env.admin("quota", "alice", "--max-bytes", "1K"))
    _upload(alice, np.zeros(200, np.float32))                 # 800 <= 1024
    with pytest.raises(td.ResourceExhausted):
        _upload(alice, np.zeros(100, np.float32))             # 800 + 400 > 1024
    # Another user is not limited.
    _upload(env.connect(BOB_TOKEN), np.zeros(1000, np.float32))

    r = _ok(env.admin("--json", "quota", "alice", "--max-sessions", "1"))
    assert json.loads(r.stdout) == {"user": "alice", "max_bytes": 0, "max_tensors": 0,
                                    "max_sessions": 1, "max_concurrency": 0}
    with pytest.raises(td.ResourceExhausted):
        env.connect(ALICE_TOKEN)
    _upload(alice, np.zeros(1000, np.float32))                # max_bytes was replaced: 0

    admin = env.connect(ADMIN_TOKEN)
    # alice holds 2 tensors (800 and 4000 bytes; the refused upload left nothing).
    assert [s["tensors"] for s in admin.list_sessions() if s["user"] == "alice"] == [2]
    admin.set_quota("alice", max_tensors=3)
    _upload(alice, np.zeros(1, np.float32))                   # the 3rd tensor fits
    env.connect(ALICE_TOKEN)                                  # max_sessions back to 0
    with pytest.raises(td.ResourceExhausted):
        _upload(alice, np.zeros(1, np.float32))               # a 4th does not
    admin.set_quota("alice")
    _upload(alice, np.zeros(1, np.float32))
    with pytest.raises(td.NotFound):
        admin.set_quota("nobody", max_bytes=1)

    r = env.admin("quota", "nobody", "--max-bytes", "1G")
    assert r.returncode == 1 and "NOT_FOUND" in r.stderr
    for bad in (["quota", "alice"], ["quota", "alice", "--max-bytes", "1.5G"],
                ["quota", "alice", "--unlimited", "--max-tensors", "3"]):
        r = env.admin(*bad)
        assert r.returncode == 2, (bad, r.stderr)
    _ok(env.admin("quota", "alice", "--unlimited"))


def test_quotas_cli_and_list_users(env):
    """ListUsers / `tensordctl quotas`: usage per user against the quotas just set, counted
    from what this test uploaded and the sessions it opened."""
    alice = env.connect(ALICE_TOKEN)
    env.connect(ALICE_TOKEN)
    _upload(alice, np.zeros(300, np.float32), np.zeros(7, np.float64))   # 1200 + 56 bytes
    admin = env.connect(ADMIN_TOKEN)
    admin.set_quota("alice", max_bytes=1 << 20, max_tensors=10, max_sessions=5,
                    max_concurrency=1)
    users = {u["name"]: u for u in admin.list_users()}
    assert sorted(users) == ["alice", "bob", "root"]
    a = users["alice"]
    assert (a["admin"], a["sessions"], a["tensors"], a["bytes"]) == (False, 2, 2, 1256)
    assert (a["max_bytes"], a["max_tensors"], a["max_sessions"], a["max_concurrency"]) == \
        (1 << 20, 10, 5, 1)
    assert a["peak_bytes"] >= 1256 and a["running"] == 0
    b = users["bob"]
    assert (b["sessions"], b["tensors"], b["bytes"], b["max_bytes"]) == (0, 0, 0, 0)
    # The daemon default for concurrency (threads 2, token file: threads - 1 = 1 unless the
    # test daemon says otherwise) is what bob reports; root is an admin with its session.
    assert users["root"]["admin"] and users["root"]["sessions"] == 1
    r = _ok(env.admin("--json", "quotas"))
    rows = {u["name"]: u for u in json.loads(r.stdout)}
    assert rows["alice"]["bytes"] == 1256 and rows["alice"]["max_concurrency"] == 1
    text = _ok(env.admin("quotas")).stdout
    line = [ln for ln in text.splitlines() if ln.startswith("alice")][0]
    assert "2 / 5" in line and "2 / 10" in line and "1.2 KiB / 1.0 MiB" in line, line
    assert "unlimited" in [ln for ln in text.splitlines() if ln.startswith("bob")][0]
    # --max-concurrency through the CLI, then back to the default with --unlimited.
    r = _ok(env.admin("--json", "quota", "alice", "--max-concurrency", "2"))
    assert json.loads(r.stdout)["max_concurrency"] == 2
    assert {u["name"]: u for u in admin.list_users()}["alice"]["max_concurrency"] == 2
    _ok(env.admin("quota", "alice", "--unlimited"))
    a = {u["name"]: u for u in admin.list_users()}["alice"]
    assert a["max_concurrency"] == users["bob"]["max_concurrency"] and a["max_bytes"] == 0


@pytest.mark.parametrize("args", [["status"], ["sessions"], ["kill", "1"],
                                  ["quota", "alice", "--max-bytes", "1"], ["quotas"],
                                  ["drain"], ["shutdown"]])
def test_user_token_gets_permission_error(env, args):
    r = env.ctl(*args, token_file=env.alice_file)
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert "permission denied" in r.stderr and "admin" in r.stderr and "alice" in r.stderr
    # Nothing happened: the daemon still serves and the quota is unchanged.
    assert _ok(env.ctl("health")).stdout.strip() == "SERVING"
    _upload(env.connect(ALICE_TOKEN), np.zeros(16, np.float32))


def test_user_token_client_methods_denied(env):
    import tensord as td
    alice = env.connect(ALICE_TOKEN)
    calls = [alice.list_sessions, lambda: alice.kill_session(1),
             lambda: alice.set_quota("alice", max_bytes=1), alice.list_users, alice.drain,
             alice.shutdown]
    for call in calls:
        with pytest.raises(td.PermissionDenied, match="not an admin"):
            call()
    assert alice.health() == "SERVING"
    _upload(alice, np.zeros(4, np.float32))


def test_token_and_address_from_environment(env):
    r = _ok(env.ctl("--json", "sessions", env_token=ADMIN_TOKEN, address=env.addr))
    assert [s["user"] for s in json.loads(r.stdout)] == ["root"]
    r = env.ctl("sessions", env_token=ALICE_TOKEN)
    assert r.returncode == 3


def test_bad_token_files(env, tmp_path):
    r = env.ctl("sessions", token_file=env.daemon_tokens)
    assert r.returncode == 2 and "TOKEN USER ROLE" in r.stderr
    r = env.ctl("sessions", token_file=str(tmp_path / "missing"))
    assert r.returncode == 2 and "cannot read token file" in r.stderr
    empty = tmp_path / "empty"
    empty.write_text("# nothing\n\n")
    r = env.ctl("sessions", token_file=str(empty))
    assert r.returncode == 2 and "holds no token" in r.stderr


def test_wrong_token_is_unauthenticated(env, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong-token-0123456789ab\n")
    r = env.ctl("sessions", token_file=str(wrong))
    assert r.returncode == 3 and "UNAUTHENTICATED" in r.stderr


def test_unreachable_daemon(env, tmp_path):
    addr = "unix://" + str(tmp_path / "nobody.sock")
    for args in (["health"], ["status"]):
        r = subprocess.run([_script(), "--address", addr, "--token-file", env.admin_file]
                           + args, capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "UNAVAILABLE" in r.stderr


def _wait_exit(d, timeout=30):
    try:
        return d.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail("tensord did not exit; stderr:\n" + d.stderr()[-3000:])


def test_drain_cli(env):
    r = _ok(env.admin("drain"))
    assert "draining" in r.stdout
    assert _wait_exit(env.d) == 0
    assert "draining" in env.d.stderr()
    r = env.ctl("health")
    assert r.returncode == 1 and "UNAVAILABLE" in r.stderr


def test_drain_method_reports_not_serving(tmp_path):
    import tensord as td
    # One compute thread: the 20 products of 1024 x 1024 below take about 2 s.
    env = Env(tmp_path, ["--compute-threads", "1"])
    try:
        _drain_while_busy(env, td)
    finally:
        _KEEP.clear()
        env.close()


def _drain_while_busy(env, td):
    admin = env.connect(ADMIN_TOKEN)
    # A busy session keeps the daemon draining long enough to ask Health: with batch=1
    # each matmul is sent at once, so its request is in the daemon's socket before the drain.
    busy = td.connect(env.addr, token=BOB_TOKEN, set_default=False, batch=1)
    env.clients.append(busy)
    x = busy.upload(np.full((1024, 1024), 1.0 / 1024, np.float32))
    y = x
    for _ in range(20):
        y = busy.run_op("matmul", [y, x])[0]
    admin.drain()
    assert admin.health() == "NOT_SERVING"
    assert _wait_exit(env.d) == 0


def test_shutdown_cli(env):
    r = _ok(env.admin("shutdown"))
    assert "stopping" in r.stdout
    assert _wait_exit(env.d) == 0
    assert "shutdown requested" in env.d.stderr()


def test_shutdown_method(env):
    admin = env.connect(ADMIN_TOKEN)
    alice = env.connect(ALICE_TOKEN)
    admin.shutdown()
    assert _wait_exit(env.d) == 0
    import tensord as td
    with pytest.raises(td.Unavailable):
        alice.stats()


@pytest.mark.parametrize("text,want", [("100", 100), ("512K", 512 << 10),
                                       ("64MiB", 64 << 20), ("4G", 4 << 30),
                                       ("2TiB", 2 << 40)])
def test_parse_size(text, want):
    from tensord.ctl import parse_size
    assert parse_size(text) == want


def test_parse_size_rejects():
    import argparse
    from tensord.ctl import parse_size
    for bad in ("1.5G", "-1", "4X", "", "G"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_size(bad)
