"""wrk driven by wrk_open_loop.lua, for the overload scenario (overload.py) and the benchmark's
overload row (bench/benchmark.py): a closed loop, or `rate` requests/s offered whatever the
answers; every 503 is checked for Retry-After and a reason. Standard library only, because
the benchmark imports it before its own environment is known."""

import json
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "wrk_open_loop.lua"


def run(url, seconds, connections, rate=None, netns=()):
    """One wrk run on `url` (one thread: it holds the schedule), optionally inside a network
    namespace (`netns`: a command prefix such as nsenter's). Returns the script's JSON line,
    with latency_ms added."""
    env = {"PATH": "/usr/bin:/bin"}
    if rate:
        env["RATE"] = f"{rate:.1f}"
    command = [*netns, "wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "--timeout", "10s", "-s",
               str(SCRIPT), url]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True, env=env).stdout
    raw = json.loads(out.strip().splitlines()[-1])
    raw["latency_ms"] = {k: raw["latency_us"][k] / 1000 for k in ("p50", "p90", "p99", "max")}
    return raw
