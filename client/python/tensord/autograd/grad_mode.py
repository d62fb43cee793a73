"""Grad mode: no_grad, enable_grad, set_grad_enabled (context managers and decorators).

The mode is per thread (client.is_grad_enabled); every node queued while it is off is sent
with Node.no_grad, so the daemon records no history for it.
"""
import functools
import inspect

from .. import client as _client

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]

is_grad_enabled = _client.is_grad_enabled


class _GradModeContext:
    """Base: a context manager that sets the mode on entry and restores it on exit, and a
    decorator that runs the function (or each step of a generator) under the mode."""

    _mode = True

    def __init__(self):
        self._prev = []

    def __enter__(self):
        self._prev.append(_client._set_grad_enabled(self._mode))
        return self

    def __exit__(self, *exc):
        _client._set_grad_enabled(self._prev.pop())
        return False

    def clone(self):
        return type(self)()

    def __call__(self, fn):
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen_wrapper(*args, **kw):
                gen = fn(*args, **kw)
                value = None
                while True:
                    with self.clone():
                        try:
                            item = gen.send(value)
                        except StopIteration as e:
                            return e.value
                    value = yield item
            return gen_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kw):
            with self.clone():
                return fn(*args, **kw)
        return wrapper


class _NoParam(_GradModeContext):
    # Usable as @no_grad and @no_grad() alike (like PyTorch 2).
    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)


class no_grad(_NoParam):  # noqa: N801 - PyTorch naming
    """Turns grad mode off: ops record no autograd history (their outputs do not require
    grad)."""
    _mode = False


class enable_grad(_NoParam):  # noqa: N801 - PyTorch naming
    """Turns grad mode on (inside no_grad)."""
    _mode = True


class set_grad_enabled(_GradModeContext):  # noqa: N801 - PyTorch naming
    """set_grad_enabled(mode): sets grad mode at once (a plain call works), and as a
    context manager or decorator restores the previous mode afterwards."""

    def __init__(self, mode):
        super().__init__()
        self._mode = bool(mode)
        self._prev.append(_client._set_grad_enabled(self._mode))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._prev:
            _client._set_grad_enabled(self._prev.pop())
        return False

    def clone(self):
        return _SetMode(self._mode)

    def __call__(self, fn):
        # Used as a decorator: undo the immediate set done by __init__.
        if self._prev:
            _client._set_grad_enabled(self._prev.pop())
        return super().__call__(fn)


class _SetMode(_GradModeContext):
    def __init__(self, mode):
        super().__init__()
        self._mode = mode

    def clone(self):
        return _SetMode(self._mode)
