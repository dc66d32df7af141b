"""Fixtures own the stack's lifecycle (as in nginx-proxy's suite): one
throw-away Compose project per test session, fresh volumes, removed at the end
(set KEEP_STACK=1 to leave it running for a look)."""

import os
import ssl

import httpx
import pytest
from stack import BASE_URL, SITE, Stack, compose


def pytest_collection_modifyitems(config, items):
    """Tests marked `backup` restore the database (scripts/restore): run them after
    every other test, whatever the order of files (a stable sort keeps the rest as is)."""
    items.sort(key=lambda item: item.get_closest_marker("backup") is not None)


@pytest.fixture(scope="session")
def stack():
    compose("down", "--volumes", "--remove-orphans")  # leftovers of an interrupted run
    try:
        compose("up", "--detach", "--wait", "--wait-timeout", "300")
    except Exception:
        compose("ps", "--all", check=False)
        compose("logs", "--tail", "40", check=False)
        raise
    yield Stack()
    if not os.environ.get("KEEP_STACK"):
        compose("down", "--volumes", "--remove-orphans")


@pytest.fixture(scope="session")
def ca_file(stack, tmp_path_factory):
    """The edge's certificate, so TLS is verified for real (not verify=False)."""
    code, pem = stack.exec("nginx", ["cat", "/run/nginx/tls/fullchain.pem"])
    assert code == 0 and "BEGIN CERTIFICATE" in pem, pem
    path = tmp_path_factory.mktemp("tls") / "edge.pem"
    path.write_text(pem)
    return str(path)


@pytest.fixture
def http(ca_file):
    """A requests session to the test stack's edge, verifying its certificate."""
    with SITE.session(ca_file) as session:
        yield session


@pytest.fixture
def http2(ca_file):
    with httpx.Client(http2=True, verify=ssl.create_default_context(cafile=ca_file), base_url=BASE_URL) as client:
        yield client


@pytest.fixture(scope="session")
def progress(request):
    """Print a line on the terminal while pytest captures output (long scenarios)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def say(line):
        if reporter:
            reporter.write_line(line)

    return say


@pytest.fixture(scope="session")
def failover_reports():
    """A clean reports/failover/ per session, so summary.json describes this run only."""
    from report import REPORTS

    REPORTS.mkdir(parents=True, exist_ok=True)
    for old in REPORTS.iterdir():
        old.unlink()
    return REPORTS


_warm = set()


def warm_up(stack, ca_file):
    """A freshly started container's first requests pay for lazy imports and new
    database connections. That is start-up, not failover: send a few hundred
    requests (not recorded) once per set of containers before measuring."""
    from traffic import Traffic

    containers = frozenset(stack.app_hostnames())
    if containers in _warm:
        return
    with Traffic(ca_file, min_requests=300, max_seconds=20, label="warm-up") as traffic:
        traffic.stop()
    _warm.add(containers)


@pytest.fixture
def scenario(stack, ca_file, progress, failover_reports):
    """run(name, description, fault, **run_scenario's options) -> the scenario's report (a dict):
    `fault` is one of faults.py's (e.g. `faults.sigkill(faults.first("wsgi"))`); the app tier
    is healthy and warm before, and healthy after."""
    from scenario import run_scenario

    def run(name, description, fault, **kwargs):
        stack.wait_app_healthy()
        warm_up(stack, ca_file)
        report = run_scenario(name, description, stack, ca_file, fault, progress, **kwargs)
        stack.wait_app_healthy()
        return report

    return run
