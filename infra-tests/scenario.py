"""One failover scenario: traffic and keyed writes before, during and after a fault
(see faults.py), Docker's health sampled throughout, every acknowledged write read
back afterwards; then the report (report.py) and the guarantees a test asserts."""

import contextlib
import json
import threading
import time

from report import FAIL_BACK_WITHIN, WRITE_REPORTS, analyse, write_report
from stack import APP_SERVICES
from traffic import Traffic, Writer

ROUTED_TO_ALL = ("whoami", "home", "messages")  # kinds nginx spreads over every app container


class HealthWatcher(threading.Thread):
    """Polls Docker every 200 ms and keeps every sample: (time, hostname, healthy)."""

    def __init__(self, stack):
        super().__init__(daemon=True)
        self.stack, self.stop_event, self.samples = stack, threading.Event(), []

    def run(self):
        api = self.stack.docker.api
        while not self.stop_event.wait(0.2):
            try:
                containers = self.stack.containers()
            except Exception:  # noqa: BLE001 - the SDK's list inspects each; one was removed meanwhile
                continue  # (uncaught, this ended the thread: no more samples, no fail-back seen)
            for container in containers:
                try:
                    state = api.inspect_container(container.id)
                except Exception:  # noqa: BLE001 - removed between list and inspect
                    continue
                healthy = state["State"]["Running"] and not state["State"]["Paused"] and \
                    state["State"].get("Health", {}).get("Status") == "healthy"
                self.samples.append((time.time(), state["Config"]["Hostname"], healthy))

    def stop(self):
        self.stop_event.set()
        self.join(timeout=5)

    def healthy_again(self, host, down_at):
        """When `host` was healthy again after going down at `down_at`: the first
        healthy sample after a not-healthy one (a paused container still reports
        "healthy", so Paused counts as not healthy)."""
        seen_down = False
        for t, h, healthy in self.samples:
            if h != host or t < down_at:
                continue
            if not healthy:
                seen_down = True
            elif seen_down or t > down_at + 30:
                return t
        return None


def run_scenario(name, description, stack, ca_file, fault, progress, before=3.0, after=5.0, *,
                 services=APP_SERVICES, mix=None, write_paths=("/api/messages",), balanced_kinds=ROUTED_TO_ALL,
                 min_requests=5000):
    """`fault(stack) -> faults.Outcome` causes the fault and waits for the repair. By
    default the traffic and writes go to Django's routes; `services`, `mix` (see
    Traffic), `write_paths` and `balanced_kinds` point a scenario at other app servers.
    Returns the report (a dict, also written as JSON and a PNG under reports/failover/)."""
    progress(f"[{name}] {description}")

    def hostnames():
        return {host: stack.service_of(c) for service in services for host, c in stack.app_hostnames(service).items()}

    kinds = hostnames()
    watcher = HealthWatcher(stack)
    watcher.start()
    rate = 20.0 / len(write_paths)  # the same write load, shared between the write routes
    with Traffic(ca_file, progress=progress, label=name, site=stack.site, mix=mix,
                 min_requests=min_requests) as traffic, \
            contextlib.ExitStack() as writers:
        running = [writers.enter_context(Writer(ca_file, name, rate=rate, site=stack.site, path=path))
                   for path in write_paths]
        time.sleep(before)
        fault_at = time.time()
        outcome = fault(stack)
        recovered_at = time.time()
        time.sleep(after)  # the fail-back window, with traffic still flowing
        records = traffic.stop()
        writes = [w for writer in running for w in writer.stop()]
    watcher.stop()
    kinds.update(hostnames())
    nginx_log = read_nginx_log(stack, traffic.started, traffic.ended)
    report = analyse(name, description, records, fault_at, outcome, recovered_at, watcher.healthy_again,
                     nginx_log, traffic, balanced_kinds)
    report["containers"] = kinds
    report["writes"] = audit_writes(stack, ca_file, name, writes)
    write_report(report, records, writes)
    w = report["writes"]
    progress(f"[{name}] {report['requests']} requests, {report['failed']} failed, "
             f"max {report['max_latency_ms']:.0f} ms; writes: {w['sent']} sent, {w['acknowledged']} acknowledged, "
             f"{w['lost']} lost, {w['duplicated']} duplicated; report: reports/failover/{name}.json")
    return report


def audit_writes(stack, ca_file, name, writes):
    """Read every acknowledged write back, through the API and with psql inside the
    db container: nothing acknowledged may be missing, nothing may be there twice."""
    prefix = f"w-{name}-"
    acked = [w for w in writes if w.message_id]
    via_api = {}
    if acked:
        after = min(w.message_id for w in acked) - 1
        with stack.site.session(ca_file) as session:
            for _ in range(200):  # bounded paging, 500 a page
                page = session.get(f"{stack.site.base_url}/api/messages", params={"after": after, "limit": 500},
                                   timeout=10).json()["messages"]
                if not page:
                    break
                for m in page:
                    if m["text"].startswith(prefix):
                        via_api.setdefault(m["text"], []).append(m["id"])
                after = page[-1]["id"]
    rows = stack.sql(f"SELECT id, text FROM board_message WHERE text LIKE '{prefix}%'")
    in_db = {}
    for line in rows.splitlines():
        if "\t" in line:
            ident, text = line.split("\t", 1)
            in_db.setdefault(text, []).append(int(ident))
    lost = [w.key for w in acked if w.message_id not in in_db.get(w.key, [])]
    lost_api = [w.key for w in acked if w.message_id not in via_api.get(w.key, [])]
    duplicated = sorted(text for text, ids in in_db.items() if len(ids) > 1)
    attempts = {}
    for w in writes:
        for status in w.statuses:
            attempts[str(status)] = attempts.get(str(status), 0) + 1
    result = {
        "scenario": name,
        "sent": len(writes),
        "acknowledged": len(acked),
        "failed": len(writes) - len(acked),
        "failed_writes": [w.as_dict() for w in writes if not w.message_id][:50],
        "attempt_statuses": attempts,
        "retried": sum(w.attempts > 1 for w in writes),
        "replayed": sum(w.replayed for w in writes),
        "present": sum(w.message_id in in_db.get(w.key, []) for w in acked),
        "unacknowledged_present": sum(w.key in in_db for w in writes if not w.message_id),
        "duplicated": len(duplicated),
        "duplicated_keys": duplicated[:50],
        "lost": len(lost),
        "lost_keys": lost[:50],
        "lost_via_api": len(lost_api),
    }
    WRITE_REPORTS.mkdir(parents=True, exist_ok=True)
    (WRITE_REPORTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    return {k: v for k, v in result.items() if not k.endswith(("_writes", "_keys"))}


def read_nginx_log(stack, since, until):
    lines = []
    for container in stack.containers("nginx"):
        raw = container.logs(stdout=True, stderr=False, since=int(since) - 1, until=int(until) + 2)
        for line in raw.decode(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    continue
    return lines


# --- the guarantees ---------------------------------------------------------------------------

def assert_no_write_lost_or_duplicated(report):
    writes = report["writes"]
    assert writes["sent"] > 0
    assert writes["lost"] == 0 and writes["lost_via_api"] == 0, writes
    assert writes["duplicated"] == 0, writes
    assert writes["acknowledged"] == writes["sent"], writes  # every write got through, retried with its key


def assert_no_user_visible_failure(report, min_requests=5000):
    assert_no_write_lost_or_duplicated(report)
    assert report["requests"] >= min_requests, report["requests"]
    assert report["failed"] == 0, report["failed_requests"][:10]
    assert report["slow_requests"] == 0, f"max latency {report['max_latency_ms']} ms"
    for back in report["fail_back"]:
        assert back["healthy_at"], f"{back['container']} never reported healthy"
        assert back["first_served_at"] and back["first_served_at"] <= back["healthy_at"] + FAIL_BACK_WITHIN, back
        assert back["share_after"] >= 0.5 * back["fair_share"], back
