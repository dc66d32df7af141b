"""scripts/bench --smoke: every row of bench/benchmark.py's table is measured (for a second
or two, so the numbers mean little) and the reports are written, on a throw-away project
of the benchmark's own, removed at the end; the stack that was running (the test stack,
standing in for yours) is neither stopped nor written to. The full benchmark is too slow
and too noisy for CI; README shows its latest table. And the production app containers
carry none of the benchmark's parts."""

import json
import os
import subprocess
import sys

import pytest
from stack import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import benchmark  # noqa: E402 - bench/ is not a package; the row table lives there

pytestmark = pytest.mark.bench

BENCH_PROJECT = "djangostack-test-bench"


def project_leftovers(stack, project):
    label = {"label": f"com.docker.compose.project={project}"}
    return {"containers": [c.name for c in stack.docker.containers.list(all=True, filters=label)],
            "volumes": [v.name for v in stack.docker.volumes.list(filters=label)],
            "networks": [n.name for n in stack.docker.networks.list(filters=label)]}


def test_bench_smoke_measures_every_row_writes_its_reports_and_leaves_the_running_stack_alone(stack, tmp_path):
    messages_before = stack.sql("SELECT count(*), coalesce(max(id), 0) FROM board_message")
    containers_before = {(c.id, c.status) for c in stack.containers(all=True)}

    out = tmp_path / "bench"
    run = subprocess.run(["bash", str(ROOT / "scripts" / "bench"), "--smoke", "--out", str(out)],
                         env={**os.environ, "BENCH_PROJECT": BENCH_PROJECT},
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"scripts/bench failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"

    report = json.loads((out / "bench.json").read_text())
    assert report["mode"] == "smoke"
    assert [r["row"] for r in report["rows"]] == [row.key for row in benchmark.ROWS]
    for r in report["rows"]:
        assert r["a"]["value"] > 0 and r["b"]["value"] > 0, r
        assert r["ratio"] == r["a"]["value"] / r["b"]["value"], r
        assert r["a"]["latency_ms"]["p50"] is not None and r["b"]["latency_ms"]["p50"] is not None, r
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| **" in run.stdout  # the table was printed

    # Its project is gone, volumes included; the running stack has not one message more
    # (the long-poll row writes through the bench project's own site) and nothing restarted.
    assert project_leftovers(stack, BENCH_PROJECT) == {"containers": [], "volumes": [], "networks": []}
    assert stack.sql("SELECT count(*), coalesce(max(id), 0) FROM board_message") == messages_before
    assert {(c.id, c.status) for c in stack.containers(all=True)} == containers_before


def test_production_app_containers_carry_no_bench_parts(stack, http):
    """The bench's settings, URLconf, CGI runner and fcgiwrap live in bench/app's image
    only; the site does not route Django's static view."""
    for service in ("wsgi", "asgi"):
        container = stack.containers(service)[0]
        found = container.exec_run(["sh", "-c", "for p in /app/benchsite /app/bin/django.cgi /app/bin/start-cgi; do "
                                                "[ ! -e $p ] || echo $p; done; command -v fcgiwrap || true"])
        assert found.exit_code == 0 and found.output.decode().split() == [], found.output
        settings = container.exec_run(["python", "-c", "from django.conf import settings as s; "
                                                       "print(s.ROOT_URLCONF, s.SECURE_SSL_REDIRECT)"])
        assert settings.output.decode().split()[-2:] == ["config.urls", "True"], settings.output
    page = http.get("https://127.0.0.1/", timeout=10).text
    start = page.index("/static/")
    static_path = page[start:page.index('"', start)]
    assert http.get(f"https://127.0.0.1{static_path}", timeout=10).status_code == 200
    answer = http.get(f"https://127.0.0.1/django-static/{static_path.removeprefix('/static/')}", timeout=10)
    assert answer.status_code == 404, answer.status_code
