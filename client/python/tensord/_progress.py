"""A small progress bar for long transfers, drawn on stderr when it is a terminal."""
import sys
import time

THRESHOLD = 64 << 20   # transfers larger than this many bytes show a bar


class Progress:
    """Progress of one transfer of `total` bytes. Inactive (every call a no-op) unless the
    transfer exceeds THRESHOLD and stderr is a TTY, or `force` is given."""

    def __init__(self, label, total, force=None, stream=None):
        self.stream = sys.stderr if stream is None else stream
        if force is None:
            try:
                force = total > THRESHOLD and self.stream.isatty()
            except (AttributeError, ValueError):
                force = False
        self.active = bool(force)
        self.label = label
        self.total = max(int(total), 1)
        self.done = 0
        self.start = time.monotonic()
        self.last = 0.0

    def update(self, n):
        """Records n more bytes moved; redraws at most ten times a second."""
        if not self.active:
            return
        self.done += n
        now = time.monotonic()
        if now - self.last >= 0.1 or self.done >= self.total:
            self.last = now
            self._draw(now)

    def _draw(self, now):
        frac = min(self.done / self.total, 1.0)
        width = 30
        fill = int(frac * width)
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed / (1 << 20)
        line = "\r%s [%s%s] %5.1f%% %.0f/%.0f MiB %.1f MiB/s" % (
            self.label, "#" * fill, "." * (width - fill), frac * 100.0,
            self.done / (1 << 20), self.total / (1 << 20), rate)
        try:
            self.stream.write(line)
            self.stream.flush()
        except (OSError, ValueError):
            self.active = False

    def close(self):
        """Ends the bar with a newline (when one was drawn)."""
        if not self.active:
            return
        self._draw(time.monotonic())
        try:
            self.stream.write("\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass
        self.active = False
