"""PostgreSQL crashes (SIGKILL of its main process) while reads and writes flow.
While it is away, every answer that needs it is a 503 with a JSON reason and
Retry-After (never a 500); when it is back, the app recovers by itself (no app
container restarts) within 10 s; no acknowledged write is lost or doubled."""

import threading
import time

import faults
import pytest
import requests
from scenario import assert_no_write_lost_or_duplicated
from stack import SITE

RECOVERY_GOAL = 10.0


class Probe(threading.Thread):
    """GET /readyz and a keyless POST every 20 ms, keeping every answer (bounded: 60 s).
    A restarted PostgreSQL is back within a second, so the probe must be quick to see it."""

    def __init__(self, ca_file):
        super().__init__(daemon=True)
        self.ca_file, self.stop, self.answers = ca_file, threading.Event(), []

    def run(self):
        end = time.monotonic() + 60
        with SITE.session(self.ca_file) as session:
            n = 0
            while not self.stop.is_set() and time.monotonic() < end:
                n += 1
                for method, url, kwargs in (("GET", "/readyz", {}),
                                            ("POST", "/api/messages", {"json": {"text": f"probe {n}"}})):
                    try:
                        r = session.request(method, f"{SITE.base_url}{url}", timeout=5, **kwargs)
                        try:
                            body = r.json()
                        except ValueError:
                            body = None
                        self.answers.append((time.time(), method, r.status_code, body, r.headers.get("Retry-After")))
                    except requests.RequestException as exc:
                        self.answers.append((time.time(), method, type(exc).__name__, None, None))
                time.sleep(0.02)


def sigkill_db(stack):
    """A crash: SIGKILL of the main process; the restart policy brings it back (in well under a second)."""
    faults.crash_dependency("db")(stack)


def stop_db_for_three_seconds(stack):
    """A longer outage, so that the answers given while it lasts are sure to be seen."""
    db = stack.container("db")
    db.stop(timeout=10)
    time.sleep(3)
    db.start()


@pytest.mark.failover
@pytest.mark.parametrize("name, fault, must_see_outage", [
    ("sigkill-db", sigkill_db, False),
    ("stop-db", stop_db_for_three_seconds, True),
])
def test_failover_database_outage(scenario, stack, ca_file, name, fault, must_see_outage):
    app_restarts = {c.name: stack.restart_count(c) for s in ("wsgi", "asgi") for c in stack.containers(s)}
    probe = Probe(ca_file)

    def database_outage(stack):
        probe.start()
        time.sleep(1)
        fault(stack)
        fault_end = time.time()
        stack.wait_healthy("db", 1)
        healthy_at = time.time()
        # Recovered: readiness and a write both succeed again.
        deadline = time.monotonic() + 30
        recovered = None
        while time.monotonic() < deadline and recovered is None:
            ok = [a for a in probe.answers if a[0] >= healthy_at and a[2] in (200, 201)]
            if {a[1] for a in ok} == {"GET", "POST"}:
                recovered = max(min(a[0] for a in ok if a[1] == m) for m in ("GET", "POST"))
            time.sleep(0.2)
        probe.stop.set()
        probe.join(timeout=10)
        return faults.Outcome(fault_end, details={
            "db_healthy_at": healthy_at, "app_recovered_s": round(recovered - healthy_at, 3) if recovered else None})

    report = scenario(name, f"PostgreSQL: {fault.__doc__.strip()}", database_outage)

    unavailable = [a for a in probe.answers if a[2] not in (200, 201)]
    if must_see_outage:
        assert unavailable, "the database outage was never seen: the test did not test anything"
    for _, method, status, body, retry_after in unavailable:
        assert status == 503, (method, status, body)
        assert body and body.get("reason") and "database" in body["reason"], body
        assert retry_after and retry_after.isdigit(), retry_after
    assert "500" not in report["counts_by_status"], report["counts_by_status"]
    assert report["app_recovered_s"] is not None and report["app_recovered_s"] <= RECOVERY_GOAL, report
    assert {c: stack.restart_count(stack.docker.containers.get(c)) for c in app_restarts} == app_restarts, \
        "an app container was restarted: recovery must not need one"
    assert_no_write_lost_or_duplicated(report)
    # After recovery, reads are clean again.
    assert all(r["start"] < report["recovered_at"] for r in report["failed_requests"])
