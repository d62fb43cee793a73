"""Helpers for the operations tests: find the metrics port, scrape, parse the exposition."""
import re
import socket
import time

LOG_RE = re.compile(r'msg="metrics listening" addr=tcp://127\.0\.0\.1:(\d+)')
SAMPLE_RE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})?'
    r' (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metrics_port(daemon, timeout=10.0):
    """The metrics port the daemon logged on stderr."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = LOG_RE.search(daemon.stderr())
        if m:
            return int(m.group(1))
        time.sleep(0.02)
    raise AssertionError(f"no metrics listening line in stderr:\n{daemon.stderr()}")


def http_get(port, raw=None, path="/metrics", timeout=10.0):
    """Sends one request (raw bytes, or GET path) and reads until the server closes.
    Returns (status code, headers dict, body bytes)."""
    if raw is None:
        raw = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    proto, code, _ = lines[0].split(" ", 2)
    assert proto == "HTTP/1.1"
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    assert int(headers["content-length"]) == len(body)
    return int(code), headers, body


def parse_exposition(text):
    """Parses text format 0.0.4 strictly. Returns {(name, frozenset(labels)): value} and the
    {family: type} map; fails on a malformed line or a sample without a TYPE."""
    samples, types = {}, {}
    for line in text.split("\n"):
        if not line:
            continue
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, fam, typ = line.split(" ", 3)
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert fam not in types, f"duplicate TYPE {fam}"
            types[fam] = typ
            continue
        assert not line.startswith("#"), line
        m = SAMPLE_RE.match(line)
        assert m, f"malformed sample line: {line!r}"
        name, labels, value = m.group(1), m.group(3) or "", m.group(4)
        fam = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or (fam in types and types[fam] == "histogram"), \
            f"sample {name} has no TYPE"
        lab = frozenset(LABEL_RE.findall(labels))
        key = (name, lab)
        assert key not in samples, f"duplicate sample {line}"
        samples[key] = float(value)
    assert text.endswith("\n")
    return samples, types


def scrape(port):
    code, headers, body = http_get(port)
    assert code == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse_exposition(body.decode())[0]


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def histogram(samples, name, **labels):
    """Returns ([(le, cumulative count)] sorted by le, sum, count) of one histogram series."""
    buckets = []
    for (n, lab), v in samples.items():
        d = dict(lab)
        if n != name + "_bucket" or any(d.get(k) != str(x) for k, x in labels.items()):
            continue
        buckets.append((float(d["le"]), v))
    buckets.sort()
    return (buckets, value(samples, name + "_sum", **labels),
            value(samples, name + "_count", **labels))
