"""scripts/bench --smoke against the running test stack: every row is measured (for a
second or two, so the numbers mean little) and the reports are written. The full
benchmark is too slow and too noisy for CI; README shows its latest table."""

import json
import os
import subprocess

from stack import PROJECT, ROOT

ROWS = [1, 2, "3a", "3b", 4, 5, 6]


def test_bench_smoke_measures_every_row_writes_its_reports_and_cleans_up(stack, tmp_path):
    out = tmp_path / "bench"
    run = subprocess.run(["bash", str(ROOT / "scripts" / "bench"), "--smoke", "--out", str(out)],
                         env={**os.environ, "COMPOSE_PROJECT_NAME": PROJECT},
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"scripts/bench failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"

    report = json.loads((out / "bench.json").read_text())
    assert report["mode"] == "smoke"
    assert [r["row"] for r in report["rows"]] == ROWS
    for r in report["rows"]:
        assert r["a"]["value"] > 0 and r["b"]["value"] > 0, r
        assert r["ratio"] == r["a"]["value"] / r["b"]["value"], r
        assert r["a"]["latency_ms"]["p50"] is not None and r["b"]["latency_ms"]["p50"] is not None, r
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| **" in run.stdout  # the table was printed

    # The bench-only containers (published loopback ports, SSL redirect off) never
    # outlive a bench run.
    names = {stack.service_of(c) for c in stack.containers(all=True)}
    assert not names & {"bench-edge", "bench-wsgi", "bench-asgi", "bench-cgi"}, names
