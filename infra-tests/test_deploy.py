"""Deploying new versions with scripts/deploy and scripts/rollback, under the failover
suite's traffic and keyed writes, on a stack of its own (project djangostack-deploy, on
127.0.0.3). The releases are made in a copy of this repository, as a user makes them in
theirs: v1 is the repository as it is; v2 changes a page and adds a column; then a change
to nginx's configuration, a release that cannot start, a migration that fails, and a
rollback to v1. The tests run in this file's order, on one stack."""

import json
import os
import threading
import time
import uuid

import faults
import pytest
from releases import copy_of_repository
from report import REPORTS
from scenario import assert_no_user_visible_failure, run_scenario
from stack import Site, Stack
from streams import SseClient, WebSocketClient, drain, wait_for
from traffic import Traffic

SITE = Site("127.0.0.3", "localhost")
PROJECT = "djangostack-deploy"
ENV = {"COMPOSE_PROJECT_NAME": PROJECT, "EDGE_BIND": SITE.address, "DEPLOY_HEALTH_TIMEOUT": "60"}
V2_MARKER = "Release two of the board"

pytestmark = pytest.mark.deploy

MIGRATION_0003 = '''from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("board", "0002_idempotencyrecord")]
    operations = [migrations.AddField("message", "note", models.TextField(blank=True, null=True))]
'''

MIGRATION_FAILS = '''from django.db import migrations


class Migration(migrations.Migration):
    expand_contract = "test only: a migration that fails while it runs"
    dependencies = [("board", "0003_message_note")]
    operations = [migrations.RunSQL("SELECT 1 / 0", migrations.RunSQL.noop)]
'''


def versions(stack):
    """Each app container's release: from its image tag and from its own answer."""
    return {c.name: c.attrs["Config"]["Image"].split(":")[-1] for s in ("wsgi", "asgi") for c in stack.containers(s)}


@pytest.fixture(scope="module")
def release(tmp_path_factory, progress):
    return copy_of_repository(tmp_path_factory.mktemp("release") / "site", ENV)


@pytest.fixture(scope="module")
def deployed(release, progress, tmp_path_factory):
    stack = Stack(project=PROJECT, site=SITE, env={"EDGE_BIND": SITE.address})
    stack.compose("down", "--volumes", "--remove-orphans")
    started = time.monotonic()
    first = release.run("deploy")
    assert first.returncode == 0, first.stdout + first.stderr
    progress(f"[deploy] first deploy (a plain start) in {time.monotonic() - started:.0f} s")
    code, pem = stack.exec("nginx", ["cat", "/run/nginx/tls/fullchain.pem"])
    assert code == 0, pem
    ca = tmp_path_factory.mktemp("deploy-tls") / "edge.pem"
    ca.write_text(pem)
    stack.ca_file = str(ca)
    stack.v1 = set(versions(stack).values())
    assert len(stack.v1) == 1, stack.v1
    # A new container's first requests pay for lazy imports: start-up, not the deploy.
    with Traffic(stack.ca_file, min_requests=300, max_seconds=20, label="warm-up", site=SITE) as warm:
        warm.stop()
    try:
        yield stack
    finally:
        if not os.environ.get("KEEP_STACK"):
            stack.compose("down", "--volumes", "--remove-orphans", check=False)


def build_first(release):
    """`scripts/deploy --build-only`, as on a small host: the CPU-heavy build before the rollout."""
    built = release.run("deploy", "--build-only")
    assert built.returncode == 0, built.stdout + built.stderr


def deploy_fault(release, script="deploy", *args):
    """The fault: a deploy (or rollback), run while traffic flows. Returns its outcome."""

    def run():
        started = time.time()
        result = release.run(script, *args)
        return {"exit_code": result.returncode, "deploy_s": round(time.time() - started, 1),
                "output": (result.stdout + result.stderr)[-3000:]}

    return faults.command(run)


def home(stack):
    with stack.site.session(stack.ca_file) as session:
        return session.get(f"{stack.site.base_url}/", timeout=5)


def test_deploy_v2_page_and_column_with_streams_open(release, deployed, progress):
    release.edit("app/board/templates/board/home.html", "<h1>Message board</h1>",
                 f"<h1>Message board</h1>\n    <p>{V2_MARKER}</p>")
    release.edit("app/board/models.py", "class Message(models.Model):",
                 "class Message(models.Model):\n    note = models.TextField(blank=True, null=True)")
    (release.path / "app/board/migrations/0003_message_note.py").write_text(MIGRATION_0003)
    release.git("add", "-A")
    release.git("commit", "-qm", "v2: a line on the page, a nullable column")

    # Browser-like stream clients, open across the deploy; a poster whose every message they must get.
    deadline = time.monotonic() + 400
    sse, ws = SseClient(deployed.ca_file, deadline, site=SITE), WebSocketClient(deployed.ca_file, deadline, site=SITE)
    sse.start()
    ws.start()
    wait_for(lambda: sse.connections and ws.connections, 15, "the SSE stream and the WebSocket")
    posted, stop = [], threading.Event()

    def poster():  # bounded: one message every 200 ms, for at most 400 s
        with SITE.session(deployed.ca_file) as session:
            while not stop.is_set() and time.monotonic() < deadline:
                key = str(uuid.uuid4())
                try:
                    r = session.post(f"{SITE.base_url}/api/messages", json={"text": f"stream {key}"},
                                     headers={"Idempotency-Key": key}, timeout=5)
                    if r.status_code == 201:
                        posted.append(r.json()["id"])
                except OSError:
                    pass
                time.sleep(0.2)

    build_first(release)
    posting = threading.Thread(target=poster, daemon=True)
    posting.start()
    report = run_scenario("deploy-v2", "scripts/deploy: v2 (a page change and an added column) under traffic",
                          deployed, deployed.ca_file, deploy_fault(release), progress)
    stop.set()
    posting.join(timeout=10)
    drain(sse, ws, posted, timeout=15)

    running = versions(deployed)
    deployed.v2 = next(iter(running.values()))  # for the tests after this one, whatever happens here
    assert report["exit_code"] == 0, report["output"]
    assert_no_user_visible_failure(report)
    assert len(running) == 4 and len(set(running.values())) == 1, running  # two of each tier, no old one left
    assert deployed.v2 not in deployed.v1
    response = home(deployed)
    assert V2_MARKER in response.text and response.headers["X-App-Version"] == deployed.v2
    assert deployed.sql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'board_message' "
                        "AND column_name = 'note'") == "1"
    streams = {"posted": len(posted), "sse_missed": len(set(posted) - sse.ids), "ws_missed": len(set(posted) - ws.ids),
               "sse_connections": len(sse.connections), "ws_connections": len(ws.connections)}
    (REPORTS / "deploy-v2-streams.json").write_text(json.dumps(streams, indent=2))
    progress(f"[deploy-v2] {report['deploy_s']} s; streams: {streams}")
    assert streams["sse_missed"] == 0 and streams["ws_missed"] == 0, streams
    assert streams["sse_connections"] >= 2 and streams["ws_connections"] >= 2, streams  # they did reconnect


def test_deploy_nginx_configuration_is_reloaded_not_restarted(release, deployed, progress):
    release.edit("nginx/conf/headers.conf", 'add_header X-Frame-Options "DENY" always;',
                 'add_header X-Frame-Options "DENY" always;\nadd_header X-Edge-Release "two" always;')
    release.git("commit", "-qam", "nginx: one more header")
    nginx = deployed.container("nginx")
    report = run_scenario("deploy-nginx", "scripts/deploy: a change to nginx's configuration under traffic",
                          deployed, deployed.ca_file, deploy_fault(release), progress, min_requests=2000)
    assert report["exit_code"] == 0, report["output"]
    assert "graceful reload" in report["output"]
    assert_no_user_visible_failure(report, min_requests=2000)
    assert home(deployed).headers.get("X-Edge-Release") == "two"
    nginx.reload()
    assert deployed.container("nginx").id == nginx.id and nginx.attrs["RestartCount"] == 0  # the same process
    assert set(versions(deployed).values()) == {deployed.v2}  # the app was not touched


def test_deploy_of_a_release_that_cannot_start_never_takes_traffic(release, deployed, progress):
    for module in ("app/config/wsgi.py", "app/config/asgi.py"):
        target = release.path / module
        target.write_text(target.read_text() + '\nraise RuntimeError("release three cannot start")\n')
    build_first(release)
    report = run_scenario("deploy-broken", "scripts/deploy: a release whose containers never become healthy",
                          deployed, deployed.ca_file, deploy_fault(release), progress, min_requests=2000)
    release.git("checkout", "--", "app")
    assert report["exit_code"] != 0 and "never became healthy" in report["output"], report["output"]
    assert_no_user_visible_failure(report, min_requests=2000)
    assert set(versions(deployed).values()) == {deployed.v2}
    assert len(versions(deployed)) == 4  # what it started is gone
    # Every answer came from a container that is still there: none from the broken release.
    assert set(report["served_by"]) - {"nginx"} <= set(deployed.app_hostnames()), report["served_by"]


def test_deploy_with_a_failing_migration_changes_nothing(release, deployed, progress):
    columns = "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns " \
              "WHERE table_name = 'board_message'"
    before = deployed.sql(columns)
    (release.path / "app/board/migrations/0004_fails.py").write_text(MIGRATION_FAILS)
    build_first(release)
    report = run_scenario("deploy-bad-migration", "scripts/deploy: a release whose migration fails",
                          deployed, deployed.ca_file, deploy_fault(release), progress, min_requests=2000)
    (release.path / "app/board/migrations/0004_fails.py").unlink()
    assert report["exit_code"] != 0 and "migrations" in report["output"], report["output"]
    assert_no_user_visible_failure(report, min_requests=2000)
    assert deployed.sql(columns) == before
    assert deployed.sql("SELECT count(*) FROM django_migrations WHERE name = '0004_fails'") == "0"
    assert set(versions(deployed).values()) == {deployed.v2}


def test_rollback_to_v1(release, deployed, progress):
    report = run_scenario("rollback-v1", "scripts/rollback: back to v1 under traffic (v2's column stays)",
                          deployed, deployed.ca_file, deploy_fault(release, "rollback"), progress)
    assert report["exit_code"] == 0, report["output"]
    assert_no_user_visible_failure(report)
    assert set(versions(deployed).values()) == deployed.v1 and len(versions(deployed)) == 4
    response = home(deployed)
    assert V2_MARKER not in response.text and "X-Edge-Release" not in response.headers
