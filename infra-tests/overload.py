"""Overload: the stack's capacity on the home page, then 2x and 5x that offered at a fixed
rate (open loop), judged from nginx's access log: upstream attempts per request, what was
shed (503) and how fast, goodput, p99 of the admitted requests, and how fast latency is
normal again. JSON and a PNG timeline under reports/overload/.

Load comes from wrk (C, epoll: a few percent of a core at 1,000 requests/s, where a Python
client would take the CPU the stack is measured on), paced by wrk_open_loop.lua. Every
number per request comes from nginx's log, which sees each request once, retries included."""

import json
import re
import threading
import time
from pathlib import Path

import cpu_account
import wrk_open_loop
from report import percentiles
from scenario import read_nginx_log

HERE = Path(__file__).resolve().parent
REPORTS = HERE / "reports" / "overload"
PATH = "/"  # the home page: a template and a query, the measurement
APP_SERVICES = ("wsgi", "asgi")
UPSTREAM_PEER = re.compile(r"\d+\.\d+\.\d+\.\d+:\d+")  # one connection attempt to an app container

# The bars (issue 12).
MAX_ATTEMPTS = 1.1  # upstream attempts per request, under any overload
MAX_SHED_S = 0.1  # a shed request is answered (503) within this
MAX_ADMITTED_P99_S = 1.0
MIN_GOODPUT = 0.9  # of capacity
RECOVERY_S = 2.0  # latency normal again this long after the overload ends

# The run's shape: a normal load (half the capacity) throughout; the overload on top of it.
BASE_SHARE = 0.5
BEFORE_S, OVERLOAD_S, AFTER_S = 4.0, 10.0, 6.0


def edge(stack):
    """Where wrk runs and connects: inside the nginx container's network namespace, to nginx
    on its own 127.0.0.1:8443. Through the published 127.0.0.1:443 every connection would
    pass docker-proxy, Docker's userland proxy for loopback, which a client from another
    machine never meets (iptables forwards its packets): measured, 0.05 cores at capacity
    and 0.19 at 5x, CPU the app would lose to a path production does not have."""
    pid = stack.container("nginx").attrs["State"]["Pid"]
    return (["nsenter", f"--net=/proc/{pid}/ns/net"], "https://127.0.0.1:8443")


def wrk(edge, seconds, connections, rate=None):
    """One wrk run on PATH at `edge` (edge()); `rate` None = closed loop."""
    netns, base_url = edge
    return wrk_open_loop.run(f"{base_url}{PATH}", seconds, connections, rate, netns=netns)


def cpu_during(stack, into, key, start_after, stop_after):
    """A thread that stores the cores each group used between two moments of a run
    (cpu_account.py) in into[key]: sampled inside the run, not at its edges, so that every
    process of the load is running at both samples."""
    def sample():
        time.sleep(start_after)
        first = cpu_account.snapshot(stack)
        time.sleep(stop_after - start_after)
        into[key] = cpu_account.usage(first, cpu_account.snapshot(stack))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    return thread


def app_cores(cpu):
    return round(sum(v for k, v in cpu.items() if k in APP_SERVICES), 3)


def entries(stack, since, until):
    """nginx's log lines for PATH between two times, each with its start, end and attempts."""
    rows = []
    for e in read_nginx_log(stack, since, until):
        if e.get("request", "").split(" ")[1:2] != [PATH]:
            continue
        end = float(e["msec"])
        duration = float(e["duration"])
        rows.append({"start": end - duration, "end": end, "duration": duration, "status": int(e["status"]),
                     "attempts": len(UPSTREAM_PEER.findall(str(e.get("upstream", "")))),
                     "upstream": e.get("upstream"), "upstream_status": e.get("upstream_status")})
    return [r for r in rows if since <= r["start"] <= until]


def measure_capacity(stack, progress, seconds=5, levels=(16, 32, 48)):
    """The most the stack sustains: the best goodput of closed loops at a few concurrencies
    (up to 48, under what nginx admits: max_conns 2 x 16 gunicorn + 2 x 10 uvicorn), among those
    whose p99 stays within the admitted bar and that got nothing but 200s."""
    target = edge(stack)
    wrk(target, 3, 32)  # warm-up: connections, caches, workers
    runs = []
    for connections in levels:
        cpu = {}
        sampler = cpu_during(stack, cpu, "cores", 1.0, seconds - 1.0)
        started = time.time()
        raw = wrk(target, seconds, connections)
        ended = time.time()
        sampler.join(timeout=10)
        rows = entries(stack, started, ended)
        ok = [r for r in rows if r["status"] == 200]
        runs.append({
            "connections": connections,
            "requests_per_s": round(len(ok) / (ended - started), 1),
            "cpu_cores": cpu.get("cores"),
            "statuses": raw["statuses"],
            "latency": percentiles([r["duration"] * 1000 for r in ok]),
            "attempts_per_request": round(sum(r["attempts"] for r in rows) / max(1, len(rows)), 3),
            "slowest": [{k: r[k] for k in ("duration", "status", "upstream", "upstream_status")}
                        for r in sorted(rows, key=lambda r: -r["duration"])[:3]],
        })
        progress(f"[overload] closed loop, {connections} connections: {runs[-1]['requests_per_s']}/s, "
                 f"p99 {runs[-1]['latency']['p99_ms']} ms, statuses {raw['statuses']}, cores {cpu.get('cores')}")
    fit = [r for r in runs if r["latency"]["p99_ms"] is not None
           and r["latency"]["p99_ms"] <= MAX_ADMITTED_P99_S * 1000 and set(r["statuses"]) == {"200"}]
    best = max(fit, key=lambda r: r["requests_per_s"]) if fit else None
    capacity = {"requests_per_s": best["requests_per_s"] if best else None,
                "connections": best["connections"] if best else None,
                "cpu_cores": best["cpu_cores"] if best else None, "runs": runs}
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "capacity.json").write_text(json.dumps(capacity, indent=2))
    progress(f"[overload] capacity: {capacity['requests_per_s']} requests/s on {PATH}")
    return capacity


def run_overload(stack, progress, capacity, factor):
    """A base load of half the capacity for the whole run; for OVERLOAD_S seconds in the
    middle, enough on top of it that `factor` x capacity is offered."""
    cap = capacity["requests_per_s"]
    target = edge(stack)
    results = {}

    def load(name, delay, seconds, rate, connections):
        time.sleep(delay)
        results[name + "_window"] = (time.time(), None)
        results[name] = wrk(target, seconds, connections, rate)
        results[name + "_window"] = (results[name + "_window"][0], time.time())

    total_s = BEFORE_S + OVERLOAD_S + AFTER_S
    extra = (factor - BASE_SHARE) * cap
    # Connections: far more than rate x latency of what is admitted, so wrk never waits for
    # a connection (then it would be closed loop again); shed answers return at once.
    threads = [
        threading.Thread(target=load, args=("base", 0, total_s, BASE_SHARE * cap, 64)),
        threading.Thread(target=load, args=("overload", BEFORE_S, OVERLOAD_S, extra, 256)),
    ]
    cpu = {}
    samplers = [cpu_during(stack, cpu, "before", 0.5, BEFORE_S - 0.5),
                cpu_during(stack, cpu, "overload", BEFORE_S + 1.0, BEFORE_S + OVERLOAD_S - 1.0)]
    started = time.time()
    progress(f"[overload] {factor}x: {BASE_SHARE * cap:.0f} requests/s for {total_s:.0f} s, "
             f"+{extra:.0f} requests/s for {OVERLOAD_S:.0f} s in the middle")
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=total_s + 120)
    ended = time.time()
    for sampler in samplers:
        sampler.join(timeout=10)
    over_start, over_end = results["overload_window"]
    rows = entries(stack, started, ended)
    report = analyse(factor, capacity, rows, started, ended, over_start, over_end, results)
    report["cpu_cores"] = {"capacity": capacity["cpu_cores"], **cpu}
    # Goodput per core the app servers got: near 1.0 means the app wasted nothing on the
    # excess (it was shed before reaching it), and any goodput gap is CPU taken elsewhere.
    if capacity["cpu_cores"] and cpu.get("overload"):
        per_core = cap / max(0.01, app_cores(capacity["cpu_cores"]))
        report["app_cores"] = {"capacity": app_cores(capacity["cpu_cores"]), "overload": app_cores(cpu["overload"])}
        report["goodput_per_app_core_ratio"] = round(
            report["goodput_rps"] / max(0.01, app_cores(cpu["overload"])) / per_core, 3)
    return report, rows


def analyse(factor, capacity, rows, started, ended, over_start, over_end, wrk_results):
    cap = capacity["requests_per_s"]
    during = [r for r in rows if over_start <= r["start"] < over_end]
    before = [r for r in rows if started + 1 <= r["start"] < over_start]
    recovered = [r for r in rows if over_end + RECOVERY_S <= r["start"]]
    shed = [r for r in during if r["status"] == 503]
    admitted = [r for r in during if r["status"] == 200]
    # 499: wrk closed a connection with a request in flight. Expected only when a wrk run
    # ends (its duration is up); anywhere else it counts as a failure like any other status.
    ends = (over_end, ended)
    other = {}
    for r in rows:
        if r["status"] == 499 and any(-0.2 <= r["end"] - end <= 1.5 for end in ends):
            continue
        if r["status"] not in (200, 503):
            other[str(r["status"])] = other.get(str(r["status"]), 0) + 1
    window = over_end - over_start
    return {
        "factor": factor,
        "capacity_rps": cap,
        "started": started, "ended": ended, "overload_start": over_start, "overload_end": over_end,
        "offered_rps": round(len(during) / window, 1),
        "requests": len(rows),
        "attempts_per_request": round(sum(r["attempts"] for r in during) / max(1, len(during)), 3),
        "attempts_per_request_all": round(sum(r["attempts"] for r in rows) / max(1, len(rows)), 3),
        "retried_requests": sum(r["attempts"] > 1 for r in during),
        "shed": len(shed),
        "shed_share": round(len(shed) / max(1, len(during)), 3),
        "shed_latency": percentiles([r["duration"] * 1000 for r in shed]),
        "shed_with_upstream_attempts": sum(r["attempts"] > 0 for r in shed),
        "shed_without_reason": sum(w.get("shed_without_reason", 0) for k, w in wrk_results.items()
                                   if not k.endswith("_window")),
        "admitted": percentiles([r["duration"] * 1000 for r in admitted]),
        "goodput_rps": round(len(admitted) / window, 1),
        "goodput_ratio": round(len(admitted) / window / cap, 3),
        "other_statuses": other,
        "latency_before": percentiles([r["duration"] * 1000 for r in before if r["status"] == 200]),
        "latency_recovered": percentiles([r["duration"] * 1000 for r in recovered if r["status"] == 200]),
        "shed_after_recovery": sum(r["status"] != 200 for r in recovered),
        "worst_chains": [{k: r[k] for k in ("duration", "status", "upstream", "upstream_status")}
                         for r in sorted(during, key=lambda r: -r["attempts"])[:5]],
        "wrk": {k: v for k, v in wrk_results.items() if not k.endswith("_window")},
    }


def write_report(name, report, rows):
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{name}.json").write_text(json.dumps(report, indent=2))
    draw_timeline(name, report, rows)


def draw_timeline(name, report, rows, bin_s=0.5):
    """Four panels on one time axis: offered, goodput and shed per second (capacity and
    90 % of it as lines); upstream attempts per request; p99 of admitted requests; the
    slowest shed answer per bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = report["started"]
    nbins = int((report["ended"] - t0) / bin_s) + 1
    offered, good, shed = [0.0] * nbins, [0.0] * nbins, [0.0] * nbins
    attempts, counts = [0] * nbins, [0] * nbins
    admitted, shed_ms = [[] for _ in range(nbins)], [[] for _ in range(nbins)]
    for r in rows:
        b = min(nbins - 1, max(0, int((r["start"] - t0) / bin_s)))
        offered[b] += 1 / bin_s
        counts[b] += 1
        attempts[b] += r["attempts"]
        if r["status"] == 200:
            good[b] += 1 / bin_s
            admitted[b].append(r["duration"] * 1000)
        elif r["status"] == 503:
            shed[b] += 1 / bin_s
            shed_ms[b].append(r["duration"] * 1000)
    xs = [i * bin_s for i in range(nbins)]
    per_request = [a / c if c else float("nan") for a, c in zip(attempts, counts, strict=True)]
    p99 = [sorted(d)[min(len(d) - 1, int(0.99 * len(d)))] if d else float("nan") for d in admitted]
    worst_shed = [max(d) if d else float("nan") for d in shed_ms]
    cap = report["capacity_rps"]

    fig, (rate, tries, latency) = plt.subplots(3, 1, figsize=(11, 8), sharex=True, height_ratios=[2.2, 1.2, 1.8])
    rate.plot(xs, offered, color="0.6", linewidth=1, label="offered requests/s")
    rate.plot(xs, good, color="tab:green", linewidth=1.5, label="goodput (200)/s")
    rate.plot(xs, shed, color="tab:red", linewidth=1.2, label="shed (503)/s")
    rate.axhline(cap, color="tab:blue", linestyle=":", linewidth=1, label=f"capacity {cap:.0f}/s")
    rate.axhline(MIN_GOODPUT * cap, color="tab:green", linestyle=":", linewidth=0.8, label="90 % of capacity")
    rate.set_ylabel("requests/s")
    rate.legend(loc="upper right", fontsize=7)
    tries.plot(xs, per_request, color="tab:purple", linewidth=1.2, label="upstream attempts per request")
    tries.axhline(MAX_ATTEMPTS, color="red", linestyle=":", linewidth=0.9, label=f"limit {MAX_ATTEMPTS}")
    tries.set_ylabel("attempts")
    tries.legend(loc="upper right", fontsize=7)
    latency.plot(xs, p99, color="black", linewidth=1, label="p99 of admitted (200), per bin")
    latency.plot(xs, worst_shed, color="tab:red", linewidth=0.8, marker=".", markersize=3,
                 label="slowest shed answer, per bin")
    latency.axhline(MAX_ADMITTED_P99_S * 1000, color="red", linestyle=":", linewidth=0.9, label="1 s")
    latency.axhline(MAX_SHED_S * 1000, color="tab:red", linestyle="--", linewidth=0.6, label="100 ms")
    latency.set_yscale("log")
    latency.set_ylabel("ms (nginx request_time)")
    latency.set_xlabel("seconds since the load started")
    latency.legend(loc="upper right", fontsize=7)
    for ax in (rate, tries, latency):
        ax.axvspan(report["overload_start"] - t0, report["overload_end"] - t0, color="orange", alpha=0.08)
        ax.axvline(report["overload_end"] + RECOVERY_S - t0, color="green", linestyle="--", linewidth=0.8)
    fig.suptitle(f"overload {report['factor']}x capacity ({cap:.0f} requests/s on {PATH}): "
                 f"{report['attempts_per_request']} attempts/request, goodput {report['goodput_ratio']:.0%} "
                 f"of capacity, {report['shed']} shed, admitted p99 {report['admitted']['p99_ms']} ms", fontsize=9)
    fig.tight_layout()
    REPORTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(REPORTS / f"{name}.png", dpi=110)
    plt.close(fig)
