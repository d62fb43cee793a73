"""Fixtures for the tensord Python tests: one real daemon per session (Unix socket and TCP),
sessions connected to it, and the check that the daemon exits cleanly at the end."""
import pytest

import tdtest_daemon


def pytest_configure(config):
    try:
        tdtest_daemon.binary()
    except RuntimeError as e:
        raise pytest.UsageError(str(e))


def pytest_unconfigure(config):
    # Only reached with a still-running daemon when no test used the `daemon` fixture.
    tdtest_daemon.shutdown_shared(check=False)


@pytest.fixture(scope="session")
def daemon():
    d = tdtest_daemon.shared()
    yield d
    tdtest_daemon.shutdown_shared(check=True)


@pytest.fixture(scope="session")
def client(daemon):
    import tensord as td
    c = td.connect(daemon.unix_address, seed=1234)
    yield c
    c.close()


@pytest.fixture(scope="session")
def tcp_client(daemon):
    import tensord as td
    c = td.Client(daemon.tcp_address, seed=99)
    yield c
    c.close()


@pytest.fixture(autouse=True)
def _default_client(client):
    # Every test runs with the session client as tensord's default.
    import tensord as td
    td.set_default_client(client)
    yield
    # Ops are asynchronous: a test must not leave an error for the next test to get.
    try:
        client.sync()
    except td.TensordError as e:
        pytest.fail("the test left a pending tensord error: %s" % e)
