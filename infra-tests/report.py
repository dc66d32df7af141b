"""The analysis of a scenario's records (failures, latency per phase, detection,
fail-back), one `percentiles`, and the report on disk: JSON, a summary of every
scenario of the run, and a PNG timeline."""

import json
from pathlib import Path

REPORTS = Path(__file__).resolve().parent / "reports" / "failover"
WRITE_REPORTS = REPORTS.parent / "writes"
FAIL_BACK_WITHIN = 2.0  # seconds after Docker reports a returning container healthy
MAX_LATENCY = 1.0  # seconds; no request may take longer


def percentiles(values_ms):
    """count, p50, p90, p99 and max of durations in milliseconds (nearest rank)."""
    if not values_ms:
        return {"count": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values_ms)

    def at(q):
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"count": len(ordered), "p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99),
            "max_ms": round(ordered[-1], 1)}


def analyse(name, description, records, fault_at, outcome, recovered_at, healthy_again, nginx_log, traffic,
            balanced_kinds):
    """`outcome`: the fault's faults.Outcome; `healthy_again(host, down_at)`: when Docker
    saw that container healthy again (scenario.HealthWatcher)."""
    fault_end = outcome.fault_end
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
        "before": [r.duration * 1000 for r in records if r.start < fault_at],
        "during": [r.duration * 1000 for r in records if fault_at <= r.start < recovered_at],
        "after": [r.duration * 1000 for r in records if r.start >= recovered_at],
    }

    # Detection: nginx retried a request on another container (upstream_addr lists
    # several) for as long as it still tried the faulty one.
    retried = [e for e in nginx_log if "," in str(e.get("upstream_addr", e.get("upstream", "")))
               and e.get("msec", 0) >= fault_at]
    time_to_detect = round(max(e["msec"] for e in retried) - fault_at, 3) if retried else 0.0

    fail_back = []
    for back in outcome.returning:
        host, down_at = back.host, back.down_at
        healthy = healthy_again(host, down_at)
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
        "client_retried_requests": [dict(r.as_dict(), since_fault_s=round(r.start - fault_at, 3))
                                    for r in records if r.client_retried][:100],
        "slowest_requests": [dict(r.as_dict(), since_fault_s=round(r.start - fault_at, 3))
                             for r in sorted(records, key=lambda r: -r.duration)[:5]],
        "time_to_detect_s": time_to_detect,
        "retried_by_nginx": len(retried),
        "fail_back": fail_back,
        "outage_s": outage,
        "served_by": {host: sum((r.served_by or "nginx") == host for r in records)
                      for host in sorted({r.served_by or "nginx" for r in records})},
        "victims": outcome.victims,
        **outcome.details,
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
