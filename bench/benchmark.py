"""scripts/bench's measurements: every row compares two things measured in the same run,
side by side, on loopback ports that compose.bench.yaml publishes (scripts/bench brings
them up on a throw-away Compose project of their own).

    python bench/benchmark.py [--smoke] [--tune] [--rows KEY ...] [--out DIR]

The rows are one table, ROWS (at the end of the measuring functions): a new row is one
Row entry plus the function that measures its two sides. scripts/bench, the report and
infra-tests/test_bench_smoke.py all read it.

Throughput rows use wrk (its JSON comes from wrk_report.lua); the TLS handshake row and
the long-poll row are measured here, because wrk can neither resume a TLS session on
demand nor tell when each waiting client was answered. httpx is imported where it is
used, so that --help and the row table need only the standard library.
"""

import argparse
import asyncio
import datetime
import json
import os
import platform
import resource
import socket
import ssl
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "infra-tests"))
import report  # noqa: E402 - infra-tests/ is not a package: the suite's percentiles, standard library only
import wrk_open_loop  # noqa: E402 - the overload row's wrk runs, standard library only

WRK_REPORT = HERE / "wrk_report.lua"

# compose.bench.yaml's published ports, all on 127.0.0.1.
EDGE_HTTPS = "https://127.0.0.1:18443"  # bench-edge: the site's nginx config, TLS
EDGE_HTTP = "http://127.0.0.1:18080"    # bench-edge: the same routes, plain HTTP (+ /cgi/)
WSGI_DIRECT = "http://127.0.0.1:18000"  # bench-wsgi: gunicorn, no nginx
ASGI_DIRECT = "http://127.0.0.1:18001"  # bench-asgi: uvicorn, no nginx
SITE = "https://127.0.0.1:18444"        # the bench project's own site nginx: writes the long-poll events


def compose(*args, env=None, timeout=300):
    """`docker compose` on the bench project (COMPOSE_PROJECT_NAME and APP_VERSION come
    from scripts/bench), with compose.bench.yaml on top of compose.yaml."""
    command = ["docker", "compose", "--project-directory", str(ROOT),
               "-f", str(ROOT / "compose.yaml"), "-f", str(ROOT / "compose.bench.yaml"), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def progress(text):
    print(f"  .. {text}", flush=True)


# --- wrk ------------------------------------------------------------------------------------

def wrk(url, seconds, connections):
    """One wrk run: requests/s and latency percentiles (ms). Errors are counted, not hidden."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(WRK_REPORT), url]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    raw = json.loads(out.strip().splitlines()[-1])
    errors = sum(raw["errors"].values())
    return {
        "requests": raw["requests"],
        "errors": errors,
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "latency_ms": {k: raw["latency_us"][k] / 1000 for k in ("p50", "p90", "p99", "max")},
    }


def check(url, expect_header=None, absent_header=None):
    """A request before the load: the URL answers 200 from the component the row is about."""
    import httpx

    response = httpx.get(url, verify=False, trust_env=False, timeout=30)  # loopback, self-signed
    if response.status_code != 200:
        raise SystemExit(f"bench: {url} answered {response.status_code}, not 200: {response.text[:200]}")
    if expect_header and expect_header[0] not in response.headers:
        raise SystemExit(f"bench: {url} has no {expect_header[0]} header: not {expect_header[1]}")
    if absent_header and absent_header in response.headers:
        raise SystemExit(f"bench: {url} carries {absent_header}: it did not come from nginx alone")
    return response


def side_by_side(a, b, seconds, rounds, connections):
    """A, B, B, A, ...: alternating so that drift on a shared host hits both sides alike."""
    for spec in (a, b):  # warm-up, not counted: connections, caches, lazy imports
        wrk(spec["url"], 1, connections)
    runs = {"a": [], "b": []}
    order = []
    for r in range(rounds):
        order += ["a", "b"] if r % 2 == 0 else ["b", "a"]
    for side in order:
        spec = a if side == "a" else b
        progress(f"{spec['label']}: {seconds} s, {connections} connections")
        runs[side].append(wrk(spec["url"], seconds, connections))
    return [summarise(spec, runs[side]) for side, spec in (("a", a), ("b", b))]


def summarise(spec, runs):
    return {
        "label": spec["label"],
        "url": spec["url"],
        "rps": statistics.mean(r["rps"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "latency_ms": {k: statistics.mean(r["latency_ms"][k] for r in runs) for k in ("p50", "p90", "p99", "max")},
        "runs": runs,
    }


def throughput(a, b, ctx, connections=16, seconds=None):
    """Both sides in requests/s, side by side; a side with errors is not a result."""
    sa, sb = side_by_side(a, b, seconds or ctx.args.seconds, ctx.args.rounds, connections)
    for side in (sa, sb):
        side["value"] = side["rps"]
        if side["errors"]:
            raise SystemExit(f"bench: {side['label']} had {side['errors']} errors (see wrk's counts); not a result")
    return sa, sb


# --- TLS handshakes ---------------------------------------------------------------------------

def handshakes(count, resume, static_path):
    """`count` new connections, one after another: TCP + TLS handshake time of each.
    With `resume`, each offers the session of the one before (TLS 1.3 resumption)."""
    # The cost of the handshake, not of checking a self-signed certificate.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = f"HEAD {static_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    session, times, resumed = None, [], 0
    for _ in range(count):
        started = time.perf_counter()
        with socket.create_connection(("127.0.0.1", 18443), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
                times.append(time.perf_counter() - started)
                resumed += tls.session_reused
                tls.sendall(request)
                while tls.recv(65536):  # reading the answer also receives the session ticket
                    pass
                if resume:
                    session = tls.session
    times_ms = sorted(t * 1000 for t in times)
    return {
        "label": "resumed handshakes" if resume else "full handshakes",
        "connections": count,
        "resumed": resumed,
        "value": count / sum(times),
        "latency_ms": percentiles(times_ms),
    }


def percentiles(values_ms):
    """The suite's one percentiles (infra-tests/report.py), in wrk's keys: p50, p90, p99, max."""
    found = report.percentiles(values_ms)
    return {k: found[f"{k}_ms"] for k in ("p50", "p90", "p99", "max")}


def handshake_sides(ctx):
    args = ctx.args
    results = {}
    for r in range(args.rounds):  # alternate, as side_by_side does
        for resume in ((False, True) if r % 2 == 0 else (True, False)):
            progress(f"{'resumed' if resume else 'full'} TLS handshakes: {args.handshakes} connections")
            results.setdefault(resume, []).append(handshakes(args.handshakes, resume, ctx.static_path))
    a, b = (merge_handshakes(results[True]), merge_handshakes(results[False]))
    # The first connection of a resumed series has no session to offer yet.
    if a["resumed"] < a["connections"] - len(results[True]) or b["resumed"]:
        raise SystemExit(f"bench: resumption did not behave: {a['resumed']} resumed of {a['connections']}, "
                         f"{b['resumed']} in the full series")
    return a, b


def merge_handshakes(runs):
    return {
        "label": runs[0]["label"],
        "connections": sum(r["connections"] for r in runs),
        "resumed": sum(r["resumed"] for r in runs),
        "value": statistics.mean(r["value"] for r in runs),
        "latency_ms": {k: statistics.mean(r["latency_ms"][k] for r in runs) for k in ("p50", "p90", "p99", "max")},
    }


# --- long-poll capacity -----------------------------------------------------------------------

async def poll_round(base, clients, event_after):
    """`clients` long-polls wait at `base`; one message is written through the normal
    site after `event_after` s. A client counts if its answer holds that message, arrives
    within 1 s of the write being sent, and the server held the poll while it waited
    (the answer's `waited` covers at least half the time from sending it to the event).
    A request queued unread behind busy threads does not count: had no event come, it
    would have been answered late, after its own timeout."""
    import httpx

    timeout = event_after + 6
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout + 10, trust_env=False, verify=False) as client:
        latest = (await client.get(f"{base}/api/messages", params={"limit": 1})).json()["messages"]
        after = latest[0]["id"] if latest else 0

        async def one():
            sent = time.monotonic()
            try:
                response = await client.get(f"{base}/api/messages/poll", params={"after": after, "timeout": timeout})
                body = response.json() if response.status_code == 200 else {}
                ids = [m["id"] for m in body.get("messages", [])]
                return {"sent": sent, "done": time.monotonic(), "status": response.status_code, "ids": ids,
                        "waited": body.get("waited", 0.0)}
            except (httpx.HTTPError, ValueError) as error:
                return {"sent": sent, "done": time.monotonic(), "status": type(error).__name__, "ids": [],
                        "waited": 0.0}

        waiting = [asyncio.create_task(one()) for _ in range(clients)]
        await asyncio.sleep(event_after)
        event = time.monotonic()
        # Through the bench project's own site, whose app servers are not the ones measured.
        written = await client.post(f"{SITE}/api/messages", json={"text": f"bench long-poll {clients}"},
                                    headers={"Idempotency-Key": str(uuid.uuid4())})
        written.raise_for_status()
        message_id = written.json()["id"]
        answers = await asyncio.gather(*waiting)
    statuses, delays, held, answered_fast = {}, [], 0, 0
    for a in answers:
        statuses[str(a["status"])] = statuses.get(str(a["status"]), 0) + 1
        if a["status"] != 200 or message_id not in a["ids"]:
            continue
        delay = a["done"] - event
        delays.append(delay * 1000)
        answered_fast += delay <= 1.0
        held += delay <= 1.0 and a["waited"] >= 0.5 * (event - a["sent"])
    return {"clients": clients, "on_time": held, "answered_within_1s_held_or_not": answered_fast,
            "statuses": statuses, "latency_ms": percentiles(delays)}


def poll_capacity(base, label, steps, bisections):
    """Double the number of waiting clients until some are not answered within 1 s,
    then bisect between the last step that held and the first that did not."""
    rounds, best, failed = [], None, None

    def attempt(clients):
        progress(f"{label}: {clients} waiting long-poll clients")
        # Time for every client to arrive: taking a request in costs a few ms of CPU.
        result = asyncio.run(poll_round(base, clients, event_after=1.0 + clients / 150))
        rounds.append(result)
        progress(f"{label}: {result['on_time']}/{clients} held and answered within 1 s "
                 f"({result['answered_within_1s_held_or_not']} answered, held or not), statuses {result['statuses']}")
        return result["on_time"] == clients

    for clients in steps:
        if not attempt(clients):
            failed = clients
            break
        best = rounds[-1]
    for _ in range(bisections if failed else 0):
        low = best["clients"] if best else 0
        middle = (low + failed) // 2
        if middle in (low, failed):
            break
        if attempt(middle):
            best = rounds[-1]
        else:
            failed = middle
    return {
        "label": label,
        "value": best["clients"] if best else 0,
        "first_failing_step": failed,
        "latency_ms": (best or rounds[-1])["latency_ms"],
        "rounds": rounds,
    }


def raise_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# --- the run ----------------------------------------------------------------------------------

def seed_messages(count):
    """The database-backed rows read 20 messages: make sure there are at least that many."""
    import httpx

    have = len(httpx.get(f"{WSGI_DIRECT}/api/messages", params={"limit": count}, trust_env=False).json()["messages"])
    for i in range(count - have):
        httpx.post(f"{WSGI_DIRECT}/api/messages", json={"text": f"bench seed {i}"}, trust_env=False,
                   headers={"Idempotency-Key": str(uuid.uuid4())}).raise_for_status()


def static_file():
    """A hashed static file named on the home page (what a browser fetches)."""
    page = check(f"{WSGI_DIRECT}/").text
    start = page.index("/static/")
    return page[start:page.index('"', start)]


@dataclass
class Context:
    """What every measuring function gets: the options, and what the checks before the
    load found (the static file's two paths)."""

    args: argparse.Namespace
    static_path: str = ""
    django_static: str = ""


# --- the rows: each function measures its row's two sides (A, B), in that order --------------

def edge(ctx):
    return throughput({"label": "through nginx (HTTPS, keep-alive)", "url": f"{EDGE_HTTPS}/"},
                      {"label": "straight to gunicorn (HTTP)", "url": f"{WSGI_DIRECT}/"}, ctx)


def static(ctx):
    return throughput({"label": "nginx (sendfile)", "url": f"{EDGE_HTTPS}{ctx.static_path}"},
                      {"label": "Django's static view", "url": f"{EDGE_HTTPS}{ctx.django_static}"}, ctx)


def tls_keepalive(ctx):
    return throughput({"label": "HTTPS", "url": f"{EDGE_HTTPS}{ctx.static_path}"},
                      {"label": "plain HTTP", "url": f"{EDGE_HTTP}{ctx.static_path}"}, ctx)


def cgi(ctx):
    # CGI needs most of a second per request: a longer run, or too few requests to count.
    return throughput({"label": "gunicorn (persistent WSGI)", "url": f"{EDGE_HTTP}/api/whoami"},
                      {"label": "CGI (fcgiwrap, a process per request)", "url": f"{EDGE_HTTP}/cgi/api/whoami"},
                      ctx, connections=4, seconds=max(ctx.args.seconds, 4))


def long_poll(ctx):
    limit = raise_file_limit()
    sides = (poll_capacity(ASGI_DIRECT, "uvicorn (one container)", ctx.args.poll_steps, ctx.args.bisections),
             poll_capacity(WSGI_DIRECT, "gunicorn (one container)", ctx.args.poll_steps, ctx.args.bisections))
    for side in sides:
        side["steps"], side["client_file_limit"] = ctx.args.poll_steps, limit
    return sides


def database(ctx):
    return throughput({"label": "20 messages from PostgreSQL (JSON)", "url": f"{WSGI_DIRECT}/api/messages?limit=20"},
                      {"label": "trivial view (/api/whoami)", "url": f"{WSGI_DIRECT}/api/whoami"}, ctx)


def overload(ctx):
    """The bench project's own site (the stack's nginx with its admission control, 2 gunicorn
    + 2 uvicorn containers): capacity = a closed loop of 32 connections on the home page, then
    5x that offered at a fixed rate (infra-tests/wrk_open_loop.lua); A = answered 200 per second."""
    seconds = max(1, int(ctx.args.seconds))
    wrk_open_loop.run(f"{SITE}/", 1, 32)  # warm-up
    closed = wrk_open_loop.run(f"{SITE}/", seconds, 32)
    capacity = closed["statuses"].get("200", 0) / (closed["duration_us"] / 1e6)
    over = wrk_open_loop.run(f"{SITE}/", seconds, 256, rate=5 * capacity)
    goodput = over["statuses"].get("200", 0) / (over["duration_us"] / 1e6)
    return ({"label": "goodput under 5x overload", "value": goodput, "latency_ms": over["latency_ms"],
             "offered_per_s": round(over["requests"] / (over["duration_us"] / 1e6), 1),
             "statuses": over["statuses"], "shed_without_reason": over["shed_without_reason"]},
            {"label": "capacity (closed loop, 32 connections)", "value": capacity,
             "latency_ms": closed["latency_ms"], "statuses": closed["statuses"]})


@dataclass(frozen=True)
class Row:
    """One comparison, A ÷ B. `measure(ctx)` returns the two sides (A, B), each a dict with
    at least `label`, `value` (in `unit`) and `latency_ms` (p50, p90, p99, max)."""

    key: str          # --rows takes it; the report's "row"
    name: str         # the table's title
    short: str        # the chart's label
    unit: str
    ratio_means: str
    note: str
    measure: Callable[[Context], tuple[dict, dict]]


ROWS = [
    Row("1", "Edge overhead: dynamic page through nginx vs straight to gunicorn",
        "edge: through nginx ÷ straight to gunicorn", "requests/s",
        "requests/s through nginx ÷ straight to the same gunicorn container",
        "the home page (template + 20 messages from PostgreSQL); both paths end in one bench-wsgi container",
        edge),
    Row("2", "Static split: a static file from nginx vs from Django", "static: nginx ÷ Django", "requests/s",
        "requests/s nginx ÷ Django", "the same hashed CSS file over the same HTTPS edge", static),
    Row("3a", "TLS cost on keep-alive: HTTPS vs plain HTTP through nginx", "TLS on keep-alive: HTTPS ÷ HTTP",
        "requests/s", "requests/s HTTPS ÷ HTTP", "a static file, so nginx's own work is all there is to compare",
        tls_keepalive),
    Row("3b", "TLS handshakes: resumed vs full", "TLS handshakes: resumed ÷ full", "handshakes/s",
        "new connections/s with a resumed session ÷ with a full handshake",
        "sequential TCP+TLS 1.3 set-up, client and server on the same host; nginx's shared session cache",
        handshake_sides),
    Row("4", "WSGI vs CGI: the same tiny view", "gunicorn ÷ CGI", "requests/s", "requests/s gunicorn ÷ CGI",
        "/api/whoami through the same nginx, 4 connections; CGI starts Python and imports Django per request",
        cgi),
    Row("5", "Waiting clients: long-polls one container answers within 1 s of an event",
        "waiting clients: uvicorn ÷ gunicorn", "clients", "long-poll clients held by uvicorn ÷ by gunicorn",
        "doubling steps, then bisection; a step fails when any client misses the 1 s", long_poll),
    Row("6", "Database cost: a database-backed page vs a trivial one", "database page ÷ trivial page",
        "requests/s", "requests/s with the database ÷ without", "straight to one gunicorn container", database),
    Row("7", "Overload: goodput under 5x the capacity vs the capacity", "goodput at 5x overload ÷ capacity",
        "requests/s", "requests/s answered 200 under 5x overload ÷ the capacity (closed loop, 32 connections)",
        "the home page through the stack's nginx, whose max_conns per app container sheds the excess (503)",
        overload),
]


def result(row, a, b):
    """A row of the report: the table's entry, both sides and their ratio."""
    return {"row": row.key, "name": row.name, "short": row.short, "a": a, "b": b, "unit": row.unit,
            "ratio": a["value"] / b["value"] if b["value"] else None, "ratio_means": row.ratio_means,
            "note": row.note}


def run(args):
    ctx = Context(args)
    seed_messages(20)
    ctx.static_path = static_file()
    ctx.django_static = f"/django-static/{ctx.static_path.removeprefix('/static/')}"
    check(f"{EDGE_HTTPS}{ctx.static_path}", absent_header="X-Served-By")
    check(f"{EDGE_HTTPS}{ctx.django_static}", expect_header=("X-Served-By", "Django"))
    if check(f"{EDGE_HTTP}/cgi/api/whoami").json()["server"] != "cgi":
        raise SystemExit("bench: /cgi/api/whoami was not answered by the CGI program")
    rows = []
    for row in ROWS:
        if args.rows and row.key not in args.rows:
            continue
        progress(f"row {row.key}: {row.short}")
        rows.append(result(row, *row.measure(ctx)))
    return rows


def tune(args):
    """gunicorn's shape (workers x threads) on this machine: the bench-wsgi container is
    recreated with each shape and measured straight, on the page mix that matters."""
    shapes = [(1, 8), (2, 4), (4, 2), (2, 8), (4, 4)]
    results = []
    try:
        for workers, threads in shapes:
            progress(f"tuning: gunicorn {workers} workers x {threads} threads")
            compose("up", "--detach", "--wait", "--no-deps", "bench-wsgi",
                    env={"BENCH_GUNICORN_WORKERS": str(workers), "BENCH_GUNICORN_THREADS": str(threads)})
            whoami = check(f"{WSGI_DIRECT}/api/whoami").json()
            result = {"workers": workers, "threads": threads, "container": whoami["container"]}
            for name, path in (("home page", "/"), ("messages JSON", "/api/messages?limit=20")):
                runs = [wrk(f"{WSGI_DIRECT}{path}", args.seconds, 16) for _ in range(args.rounds)]
                result[name] = summarise({"label": name, "url": path}, runs)
            results.append(result)
    finally:
        # Back to the configured shape.
        compose("up", "--detach", "--wait", "--no-deps", "bench-wsgi")
    return results


def tuning_table(results):
    lines = ["| gunicorn workers x threads | home page req/s (p99 ms) | messages JSON req/s (p99 ms) |",
             "|---|---|---|"]
    for r in results:
        cells = [f"{r[n]['rps']:,.0f} ({r[n]['latency_ms']['p99']:.0f})" for n in ("home page", "messages JSON")]
        lines.append(f"| {r['workers']} x {r['threads']} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def commit():
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine():
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
    return {"cores": os.cpu_count(), "memory_gib": round(memory / 2**30), "kernel": platform.release(),
            "python": platform.python_version(), "wrk": wrk_version}


def fmt(value):
    return "-" if value is None else f"{value:,.1f}" if value < 10 else f"{value:,.0f}"


def ratio_text(r):
    return "n/a (B = 0)" if r["ratio"] is None else f"{r['ratio']:.2f}"


def table(rows):
    lines = ["| # | comparison | A | B | ratio A/B | A p50 / p99 ms | B p50 / p99 ms |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        a, b = r["a"], r["b"]
        def lat(ms):
            return "-" if ms["p50"] is None else f"{ms['p50']:.1f} / {ms['p99']:.1f}"
        lines.append(
            f"| {r['row']} | {r['name']} | {a['label']}: {fmt(a['value'])} {r['unit']} "
            f"| {b['label']}: {fmt(b['value'])} {r['unit']} "
            f"| **{ratio_text(r)}** | {lat(a['latency_ms'])} | {lat(b['latency_ms'])} |")
    return "\n".join(lines)


def chart(rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = rows[::-1]  # first row on top
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(rows) + 1.6))
    ratios = [r["ratio"] or 0 for r in shown]  # None: B measured zero (the table says so)
    colours = ["#3b6ea5" if ratio >= 1 else "#c8702a" for ratio in ratios]
    bars = ax.barh([f"{r['row']}. {r['short']}" for r in shown], ratios, color=colours)
    ax.set_xscale("log")
    ax.set_xlim(min([0.1, *[x for x in ratios if x]]) / 2, max([10, *ratios]) * 6)
    ax.axvline(1, color="black", linewidth=0.8)
    for bar, r in zip(bars, shown, strict=True):
        ax.text(bar.get_width() * 1.1, bar.get_y() + bar.get_height() / 2, ratio_text(r), va="center", fontsize=8)
    ax.set_xlabel("ratio A ÷ B, measured side by side (log scale; 1 = no difference)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="seconds, not minutes: it runs and writes its outputs")
    parser.add_argument("--out", type=Path, help="default: bench/reports/bench (…/bench-smoke with --smoke)")
    parser.add_argument("--rows", nargs="*", choices=[r.key for r in ROWS], metavar="KEY",
                        help="only these rows; default: all. " + "; ".join(f"{r.key}: {r.short}" for r in ROWS))
    parser.add_argument("--tune", action="store_true", help="also try gunicorn shapes (workers x threads)")
    args = parser.parse_args()
    args.out = args.out or HERE / "reports" / ("bench-smoke" if args.smoke else "bench")
    if args.smoke:
        args.seconds, args.rounds, args.handshakes, args.poll_steps, args.bisections = 1, 1, 20, [4, 16], 0
    else:
        # Up to 2,048 waiting clients: more would need a poll timeout past the app's 30 s.
        args.seconds, args.rounds, args.handshakes = 8, 2, 300
        args.poll_steps, args.bisections = [4 * 2**i for i in range(10)], 2
    started = datetime.datetime.now(datetime.UTC)
    rows = run(args)
    report = {
        "date": started.isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        "mode": "smoke" if args.smoke else "full",
        "settings": {"seconds": args.seconds, "rounds": args.rounds, "handshakes": args.handshakes,
                     "poll_steps": args.poll_steps, "bisections": args.bisections},
        "rows": rows,
    }
    if args.tune:
        report["tuning"] = tune(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    title = (f"scripts/bench {report['mode']}, {report['date'][:10]}, {report['machine']['cores']} cores, "
             f"commit {report['commit']}")
    chart(rows, args.out / "bench.png", title)
    print(f"\n{title}\n\n{table(rows)}\n", flush=True)
    if args.tune:
        print(f"{tuning_table(report['tuning'])}\n", flush=True)
    print(f"written: {args.out / 'bench.json'}, {args.out / 'bench.png'}", flush=True)


if __name__ == "__main__":
    main()
