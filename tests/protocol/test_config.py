"""--config FILE (YAML): every option settable, the command line overrides the file, unknown
keys and bad values are start-up errors naming file, line and key; deploy/tensord.conf
documents every option and is accepted as is."""
import re
import subprocess

import pytest

from authutil import ALICE_TOKEN, client, handshake, write_tokens
from conftest import REPO, TENSORD_BIN, Client

EXAMPLE = REPO / "deploy" / "tensord.conf"


def run_bad(tmp_path, text, *args):
    cfg = tmp_path / "bad.conf"
    cfg.write_text(text)
    r = subprocess.run([TENSORD_BIN, "--config", str(cfg), *args], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0 and "listening" not in r.stdout
    return r.stderr


def help_keys():
    out = subprocess.run([TENSORD_BIN, "--help"], capture_output=True, text=True,
                         timeout=30).stdout
    names = re.findall(r"^  --([a-z-]+)", out, re.M)
    keys = {n.replace("-", "_") for n in names} - {"config", "help", "version"}
    keys.discard("token_file")
    keys.add("auth_token_file")
    return keys


def test_example_documents_every_option():
    text = EXAMPLE.read_text()
    keys = help_keys()
    assert len(keys) > 20
    missing = [k for k in keys if not re.search(rf"^#? ?{k}:", text, re.M)]
    assert not missing, f"deploy/tensord.conf lacks {missing}"


def test_example_is_accepted(start_daemon, pb):
    # The example's listen addresses are replaced by the fixture's --listen flags.
    d = start_daemon("--config", str(EXAMPLE))
    c = client(pb, d.tcp)
    hs = handshake(c, "")
    assert hs.limits.max_frame_body == 16777216


def test_file_values_apply_and_cmdline_overrides(start_daemon, tmp_path, pb):
    cfg = tmp_path / "t.conf"
    cfg.write_text(f"""
max_graph_nodes: 77
max_frame_data: 12345
max_session_ids: 1000
auth_token_file: {write_tokens(tmp_path)}
listen: tcp://127.0.0.1:1   # replaced by the fixture's --listen
""")
    d = start_daemon("--config", str(cfg), "--max-session-ids", "999")
    c = client(pb, d.tcp)
    hs = handshake(c, ALICE_TOKEN)                  # the token file came from the config
    assert hs.limits.max_graph_nodes == 77
    assert hs.limits.max_frame_data == 12345
    assert hs.limits.max_session_ids == 999         # the command line won
    assert hs.user == "alice"


def test_listen_list_from_file(tmp_path):
    sock = tmp_path / "c.sock"
    cfg = tmp_path / "l.conf"
    cfg.write_text(f"listen:\n  - tcp://127.0.0.1:0\n  - unix://{sock}\nthreads: 1\n")
    p = subprocess.Popen([TENSORD_BIN, "--config", str(cfg)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        lines = [p.stdout.readline().split() for _ in range(2)]
        assert [w for w, _ in lines] == ["listening", "listening"]
        assert lines[1][1] == f"unix://{sock}"
    finally:
        p.terminate()
        assert p.wait(timeout=30) == 0


@pytest.mark.parametrize("text,want", [
    ("threads: 2\nbogus_key: 1\n", ":2: unknown option 'bogus_key'"),
    ("threads: 0\n", ":1: --threads: 0 out of range"),
    ("threads: two\n", "'two' is not an integer"),
    ("allow_remote: maybe\n", "not true or false"),
    ("log_level: loud\n", "not one of debug"),
    ("threads: 2\nthreads: 3\n", "threads given twice"),
    ("threads: [1, 2]\n", "threads: want a single value"),
    ("- a\n- b\n", "want 'option: value' lines"),
    ('threads: "2\n', "YAML error"),
    ("config: other.conf\n", "unknown option 'config'"),
    ("allow_remote: true\nlisten: tcp://0.0.0.0:0\n", "needs --token-file"),
])
def test_bad_file_is_a_startup_error(tmp_path, text, want):
    err = run_bad(tmp_path, text)
    assert want in err, err
    assert "bad.conf" in err or "token-file" in err


def test_missing_file(tmp_path):
    r = subprocess.run([TENSORD_BIN, "--config", str(tmp_path / "nope.conf")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "nope.conf" in r.stderr and "No such file" in r.stderr


def test_bad_cmdline_still_checked_with_file(tmp_path):
    err = run_bad(tmp_path, "threads: 2\n", "--threads", "0")
    assert "--threads" in err
