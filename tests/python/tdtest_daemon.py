"""Starts and stops the tensord daemon the Python tests run against.

The binary comes from $TENSORD_BIN (required). One daemon listens on a temporary Unix
socket and on tcp://127.0.0.1:0 (the real port is read from its `listening` lines).
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")



def lose_connection(client):
    """Drops a tensord.Client's TCP connection the way a network failure does: a reset
    (SO_LINGER 0), so the daemon sees the connection fail rather than end."""
    s = client._conn.sock
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def binary():
    b = os.environ.get("TENSORD_BIN")
    if not b:
        raise RuntimeError("TENSORD_BIN is not set: point it at the daemon binary, e.g. "
                           "TENSORD_BIN=build/server/tensord pytest tests/python")
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        raise RuntimeError("TENSORD_BIN=%r is not an executable file" % b)
    return b


class Daemon:
    """A tensord process with a Unix and a TCP listener; stop() checks how it ended."""

    def __init__(self, extra_args=(), tcp=True, timeout=30.0):
        self.tmp = tempfile.mkdtemp(prefix="tdtest-")
        sock = os.path.join(self.tmp, "s.sock")
        listen = ["--listen", "unix://" + sock]
        if tcp:
            listen += ["--listen", "tcp://127.0.0.1:0"]
        self.out_path = os.path.join(self.tmp, "stdout")
        self.err_path = os.path.join(self.tmp, "stderr")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([binary()] + listen + list(extra_args),
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        want = 2 if tcp else 1
        deadline = time.monotonic() + timeout
        self.addresses = []
        while True:
            with open(self.out_path) as f:
                self.addresses = [ln.split(None, 1)[1].strip() for ln in f.read().splitlines()
                                  if ln.startswith("listening ")]
            if len(self.addresses) >= want:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("tensord did not start (%s): %s" % (
                    "exit %s" % self.proc.returncode, self.stderr()[-3000:]))
            time.sleep(0.02)
        self.unix_address = next(a for a in self.addresses if a.startswith("unix://"))
        tcps = [a for a in self.addresses if a.startswith("tcp://")]
        self.tcp_address = tcps[0] if tcps else None
        self.returncode = None

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def stop(self, timeout=60.0):
        """SIGTERM, wait. Returns: (exit code, stderr text)."""
        if self.returncode is None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.returncode = self.proc.returncode
            self.err_text = self.stderr()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.returncode, self.err_text

    def stop_and_check(self):
        """Stops the daemon and asserts it exited 0 with no sanitizer report."""
        rc, err = self.stop()
        assert rc == 0, "tensord exited with %s; stderr tail:\n%s" % (rc, err[-3000:])
        for m in SANITIZER_MARKERS:
            assert m not in err, "tensord stderr has %r:\n%s" % (m, err[-6000:])


_shared = None


def shared():
    """Returns: the session's shared daemon, started on first use."""
    global _shared
    if _shared is None:
        _shared = Daemon()
    return _shared


def shutdown_shared(check):
    global _shared
    d, _shared = _shared, None
    if d is not None:
        if check:
            d.stop_and_check()
        else:
            d.stop()


_schema = None


def schema():
    """Returns: {op name: tensord.OpSchema} from the shared daemon (fetched once)."""
    global _schema
    if _schema is None:
        import tensord as td
        with td.Client(shared().unix_address) as c:
            _schema = dict(c.schema())
    return _schema
