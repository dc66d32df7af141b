"""Failover scenarios: traffic before, during and after a fault, then the
numbers (failures, latency per phase, detection, fail-back) as JSON and a PNG
timeline under reports/failover/."""

import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import testinfra
from stack import APP_SERVICES
from traffic import Traffic, Writer

REPORTS = Path(__file__).resolve().parent / "reports" / "failover"
WRITE_REPORTS = REPORTS.parent / "writes"
ROUTED_TO_ALL = ("whoami", "home", "messages")  # kinds nginx spreads over every app container
FAIL_BACK_WITHIN = 2.0  # seconds after Docker reports a returning container healthy
MAX_LATENCY = 1.0  # seconds; no request may take longer


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


# --- faults ------------------------------------------------------------------------------------

def crash(container):
    """SIGKILL to the container's main process from the host: a crash, which the
    restart policy repairs (docker kill would count as a manual stop)."""
    container.reload()
    os.kill(container.attrs["State"]["Pid"], signal.SIGKILL)


def restart_count(container):
    return testinfra.get_host("local://").docker(container.name).inspect()["RestartCount"]


def wait_app_healthy(stack, timeout=120):
    for service in APP_SERVICES:
        stack.wait_healthy(service, 2, timeout=timeout)


def wait_restarted(stack, container, count_before, timeout=90):
    docker_host = testinfra.get_host("local://")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if docker_host.docker(container.name).is_running and restart_count(container) > count_before:
            return
        time.sleep(0.2)
    raise AssertionError(f"{container.name} was not restarted by its restart policy within {timeout} s")


def crash_single_service(stack, service):
    """Crash the one container of `service`, wait until its restart policy has it
    back and healthy. Returns (time the crash was done, restart count after)."""
    container = stack.container(service)
    count = restart_count(container)
    crash(container)
    crashed_at = time.time()
    wait_restarted(stack, container, count)
    stack.wait_healthy(service, 1)
    return crashed_at, restart_count(container)


# --- one scenario ------------------------------------------------------------------------------

def run_scenario(name, description, stack, ca_file, fault, progress, before=3.0, after=5.0, *,
                 services=APP_SERVICES, mix=None, write_paths=("/api/messages",), balanced_kinds=ROUTED_TO_ALL,
                 min_requests=5000):
    """fault(stack) causes the fault, waits for recovery, and returns a dict with
    `fault_end` (time.time() when the fault stopped acting) and `returning`: one
    {"host", "down_at"} per container that came back or replaced a faulty one.
    By default the traffic and writes go to Django's routes; `services`, `mix` (see
    Traffic), `write_paths` and `balanced_kinds` point a scenario at other app servers."""
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
    outcome["containers"] = kinds
    nginx_log = read_nginx_log(stack, traffic.started, traffic.ended)
    report = analyse(name, description, records, fault_at, outcome, recovered_at, watcher, nginx_log, traffic,
                     balanced_kinds)
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


def percentiles(durations):
    if not durations:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(durations)

    def at(q):
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    return {"count": len(ordered), "p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": round(ordered[-1] * 1000, 1)}


def analyse(name, description, records, fault_at, outcome, recovered_at, watcher, nginx_log, traffic,
            balanced_kinds=ROUTED_TO_ALL):
    fault_end = outcome.get("fault_end", fault_at)
    failed = [r for r in records if not r.ok]
    counts = {}
    for r in records:
        if r.status is None:
            key = (r.error or "?").split(":")[0]  # the exception's name
        else:
            key = str(r.status) if r.ok or r.status != 200 else "200 with a bad body"
        counts[key] = counts.get(key, 0) + 1

    failed_by_kind_counts = {r.kind: {} for r in failed}
    phases = {
        "before": [r.duration for r in records if r.start < fault_at],
        "during": [r.duration for r in records if fault_at <= r.start < recovered_at],
        "after": [r.duration for r in records if r.start >= recovered_at],
    }

    # Detection: nginx retried a request on another container (upstream_addr lists
    # several) for as long as it still tried the faulty one.
    retried = [e for e in nginx_log if "," in str(e.get("upstream_addr", e.get("upstream", "")))
               and e.get("msec", 0) >= fault_at]
    time_to_detect = round(max(e["msec"] for e in retried) - fault_at, 3) if retried else 0.0

    fail_back = []
    for back in outcome.get("returning", []):
        host, down_at = back["host"], back["down_at"]
        healthy = watcher.healthy_again(host, down_at)
        served = [r.start for r in records if r.served_by == host and r.start >= down_at]
        first = min(served) if served else None
        # Its share of the requests nginx spreads over every app container, in the 3 s
        # after the fail-back deadline, against a fair share among those answering then.
        window = [r for r in records if r.kind in balanced_kinds and r.ok and healthy
                  and healthy + FAIL_BACK_WITHIN <= r.start < healthy + FAIL_BACK_WITHIN + 3]
        answering = {r.served_by for r in window}
        share = (sum(r.served_by == host for r in window) / len(window)) if window else 0.0
        fail_back.append({
            "container": host,
            "down_at": down_at,
            "healthy_at": healthy,
            "first_served_at": first,
            "fail_back_s": round(first - healthy, 3) if (first and healthy) else None,
            "share_after": round(share, 3),
            "fair_share": round(1 / max(1, len(answering)), 3),
            "requests_in_window": len(window),
        })

    for r in failed:
        report_kind = str(r.status or (r.error or "?").split(":")[0])
        failed_by_kind_counts[r.kind][report_kind] = failed_by_kind_counts[r.kind].get(report_kind, 0) + 1

    outage = None
    if failed:
        first_fail = min(r.start for r in failed)
        last_fail = max(r.start for r in failed)
        back = [r.start + r.duration for r in records if r.ok and r.start > last_fail]
        outage = round((min(back) if back else traffic.ended) - first_fail, 3)

    return {
        "scenario": name,
        "description": description,
        "traffic_start": traffic.started,
        "traffic_end": traffic.ended,
        "fault_at": fault_at,
        "fault_end": fault_end,
        "recovered_at": recovered_at,
        "requests": len(records),
        "counts_by_status": counts,
        "failed": len(failed),
        "failed_requests": [r.as_dict() for r in failed[:100]],
        "failed_by_kind": failed_by_kind_counts,
        "latency": {phase: percentiles(values) for phase, values in phases.items()},
        "max_latency_ms": round(max((r.duration for r in records), default=0) * 1000, 1),
        "slow_requests": sum(r.duration > MAX_LATENCY for r in records),
        # GETs sent again by the client after a connection closed with no answer (traffic.KEEPALIVE_RETRY).
        "client_retried": sum(r.client_retried for r in records),
        "slowest_requests": [dict(r.as_dict(), since_fault_s=round(r.start - fault_at, 3))
                             for r in sorted(records, key=lambda r: -r.duration)[:5]],
        "time_to_detect_s": time_to_detect,
        "retried_by_nginx": len(retried),
        "fail_back": fail_back,
        "outage_s": outage,
        "served_by": {host: sum((r.served_by or "nginx") == host for r in records)
                      for host in sorted({r.served_by or "nginx" for r in records})},
        **{k: v for k, v in outcome.items() if k not in ("fault_end", "returning")},
    }


def write_report(report, records, writes):
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{report['scenario']}.json").write_text(json.dumps(report, indent=2))
    draw_timeline(report, records, writes, REPORTS / f"{report['scenario']}.png")
    rows = []
    for path in sorted(REPORTS.glob("*.json")):
        if path.name == "summary.json":
            continue
        data = json.loads(path.read_text())
        if "scenario" not in data or "latency" not in data:
            continue
        rows.append({
            "scenario": data["scenario"],
            "requests": data["requests"],
            "failed": data["failed"],
            "p99_during_ms": data["latency"]["during"]["p99_ms"],
            "max_latency_ms": data["max_latency_ms"],
            "time_to_detect_s": data["time_to_detect_s"],
            "fail_back_s": max((f["fail_back_s"] for f in data["fail_back"] if f["fail_back_s"] is not None),
                               default=None),
            "outage_s": data["outage_s"],
            "writes_acknowledged": data.get("writes", {}).get("acknowledged"),
            "writes_lost": data.get("writes", {}).get("lost"),
            "writes_duplicated": data.get("writes", {}).get("duplicated"),
        })
    (REPORTS / "summary.json").write_text(json.dumps(rows, indent=2))


def draw_timeline(report, records, writes, path, bin_s=0.1):
    """Three panels sharing the time axis: requests/s and errors/s; p99 latency;
    one band per answering container (dark = no traffic), so a container going
    away and coming back is visible at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = report["traffic_start"]
    nbins = int((report["traffic_end"] - t0) / bin_s) + 1
    hosts = sorted({r.served_by or "nginx (static)" for r in records}, key=lambda h: (h.startswith("nginx"), h))
    lanes = {h: [0.0] * nbins for h in hosts}
    total, errors = [0.0] * nbins, [0.0] * nbins
    durations = [[] for _ in range(nbins)]
    for r in records:
        b = min(nbins - 1, max(0, int((r.start - t0) / bin_s)))
        total[b] += 1 / bin_s
        durations[b].append(r.duration * 1000)
        if r.ok:
            lanes[r.served_by or "nginx (static)"][b] += 1 / bin_s
        else:
            errors[b] += 1 / bin_s
    acked_per_s, write_errors = [0.0] * nbins, [0.0] * nbins
    for w in writes:
        if w.acknowledged_at:
            acked_per_s[min(nbins - 1, max(0, int((w.acknowledged_at - t0) / bin_s)))] += 1 / bin_s
        if len(w.statuses) > 1 or not w.acknowledged_at:  # at least one failed attempt
            write_errors[min(nbins - 1, max(0, int((w.first_sent - t0) / bin_s)))] += 1 / bin_s
    xs = [i * bin_s for i in range(nbins)]
    p99 = [sorted(d)[min(len(d) - 1, int(0.99 * len(d)))] if d else float("nan") for d in durations]
    smooth = [sum(total[max(0, i - 9):i + 1]) / len(total[max(0, i - 9):i + 1]) for i in range(nbins)]

    fig, (rate, latency, bands) = plt.subplots(
        3, 1, figsize=(11, 7.5), sharex=True, height_ratios=[2, 2, 0.35 * len(hosts) + 0.6])
    rate.plot(xs, total, color="0.75", linewidth=0.6, label="requests/s (100 ms bins)")
    rate.plot(xs, smooth, color="tab:blue", linewidth=1.4, label="requests/s (1 s mean)")
    rate.bar(xs, errors, width=bin_s, color="red", align="edge", label="errors/s")
    acked_smooth = [sum(acked_per_s[max(0, i - 9):i + 1]) / len(acked_per_s[max(0, i - 9):i + 1]) for i in range(nbins)]
    rate.plot(xs, acked_smooth, color="tab:purple", linewidth=1.2, label="writes acknowledged/s (1 s mean)")
    rate.bar(xs, write_errors, width=bin_s, color="darkorange", align="edge", label="writes retried/s")
    rate.set_ylabel("requests/s")
    rate.legend(loc="lower left", fontsize=7)
    latency.plot(xs, p99, color="black", linewidth=0.7, label="p99 latency per 100 ms")
    latency.axhline(MAX_LATENCY * 1000, color="red", linestyle=":", linewidth=0.9, label="1 s limit")
    latency.set_yscale("log")
    latency.set_ylabel("latency (ms)")
    latency.legend(loc="lower left", fontsize=7)
    image = [lanes[h] for h in hosts]
    bands.imshow(image, aspect="auto", interpolation="nearest", cmap="viridis",
                 extent=(0, nbins * bin_s, len(hosts) - 0.5, -0.5))
    kinds = report.get("containers", {})
    bands.set_yticks(range(len(hosts)), [f"{h} ({kinds[h]})" if h in kinds else h for h in hosts], fontsize=7)
    bands.set_xlabel("seconds since traffic started")
    bands.set_title("requests answered per container (dark: none)", fontsize=8)
    marks = [(report["fault_at"], "red", "fault"), (report["recovered_at"], "green", "recovered")]
    if report["fault_end"] - report["fault_at"] > 0.5:
        marks.insert(1, (report["fault_end"], "orange", "fault ends"))
    for ax in (rate, latency, bands):
        for when, color, _ in marks:
            ax.axvline(when - t0, color=color, linestyle="--", linewidth=1)
    for when, color, label in marks:
        rate.annotate(label, (when - t0, 1.0), xycoords=("data", "axes fraction"), color=color,
                      fontsize=8, xytext=(3, -10), textcoords="offset points")
    fig.suptitle(f"{report['scenario']}: {report['description']}\n{report['requests']} requests, "
                 f"{report['failed']} failed, max latency {report['max_latency_ms']:.0f} ms", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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


def replace_container(stack, container):
    """Stop and remove one container; Compose starts a new one (new name, new IP)."""
    service = stack.service_of(container)
    before = set(stack.app_hostnames(service))
    down_at = time.time()
    container.stop(timeout=25)
    container.remove()
    stack.compose("up", "--detach", "--no-recreate", "--wait", service)
    return [{"host": host, "down_at": down_at} for host in set(stack.app_hostnames(service)) - before]
