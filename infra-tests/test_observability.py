"""Issue 14, "see what it is doing": one request id end to end, JSON logs, Prometheus
metrics and alerts. The `monitoring` profile (Prometheus and the exporters) is started
in the test project by this module and removed at its end, so the rest of the suite
sees the default stack."""

import calendar
import json
import socket
import ssl
import time
import uuid

import pytest
import requests
import test_containers_nonroot
import test_least_privilege
from faults import crash, wait_restarted
from stack import BASE_URL, HTTP_URL, PROJECT, ROOT, compose

pytestmark = pytest.mark.observability

MONITORING = ("prometheus", "nginx-exporter", "postgres-exporter", "redis-exporter", "blackbox-exporter",
              "pgbackrest-exporter")
PROMETHEUS = "http://127.0.0.1:9090"
SCRAPE_JOBS = {"app", "nginx", "postgres", "redis", "edge_tls", "pgbackrest", "prometheus"}
REPORTS = ROOT / "infra-tests" / "reports" / "observability"


@pytest.fixture(scope="module")
def monitoring(stack):
    compose("--profile", "monitoring", "up", "--detach", "--wait", "--wait-timeout", "180", *MONITORING)
    yield
    compose("--profile", "monitoring", "rm", "--stop", "--force", *MONITORING)
    # Its data too: the next run's alert rules must not see this run's history.
    for volume in stack.docker.volumes.list(filters={"label": f"com.docker.compose.project={PROJECT}"}):
        if volume.attrs["Labels"].get("com.docker.compose.volume") == "prometheus-data":
            volume.remove(force=True)


def prometheus(path, **params):
    with requests.Session() as session:
        session.trust_env = False  # 127.0.0.1 only, no proxy from the environment
        response = session.get(f"{PROMETHEUS}{path}", params=params, timeout=5)
    response.raise_for_status()
    return response.json()["data"]


def firing(alertname):
    return [a for a in prometheus("/api/v1/alerts")["alerts"]
            if a["labels"]["alertname"] == alertname and a["state"] == "firing"]


def wait_for(what, predicate, timeout, interval=0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s")


def json_lines(container, since=None):
    """(parsed records, lines that are not JSON) of the container's output."""
    raw = container.logs(stdout=True, stderr=True, since=since).decode(errors="replace")
    records, other = [], []
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            other.append(line)
    return records, other


def by_hostname(stack, hostname):
    return stack.app_hostnames()[hostname]


def trace(stack, request_id, served_by, timeout=10):
    """The nginx access record and the app's records carrying `request_id`."""

    def found():
        nginx = [r for r in json_lines(stack.container("nginx"))[0] if r.get("request_id") == request_id]
        app = [r for r in json_lines(by_hostname(stack, served_by))[0] if r.get("request_id") == request_id]
        return (nginx, app) if nginx and app else None

    return wait_for(f"log records of request {request_id}", found, timeout)


# --- one request id end to end -------------------------------------------------------------

def test_client_request_id_is_in_nginx_log_app_log_and_response(stack, http, progress):
    """A well-formed X-Request-ID from the client is kept all the way. The request is
    an invalid JSON POST, so the app logs a Django warning as well as its access record."""
    request_id = f"obs-{uuid.uuid4().hex[:12]}"
    response = http.post(f"{BASE_URL}/api/messages", data=b"not json", timeout=10,
                         headers={"Content-Type": "application/json", "X-Request-ID": request_id})
    assert response.status_code == 400, response.text
    assert response.headers["X-Request-ID"] == request_id
    assert response.json()["request_id"] == request_id  # the app's JSON error
    nginx, app = trace(stack, request_id, response.headers["X-Served-By"])
    assert len(nginx) == 1 and nginx[0]["status"] == 400, nginx
    access = [r for r in app if r.get("logger") == "board.access"]
    assert len(access) == 1 and access[0]["status"] == 400 and access[0]["route"] == "api/messages", app
    assert any(r.get("logger") == "django.request" and r["level"] == "WARNING" for r in app), app
    for record in nginx + app:
        assert record["container"] and record["time"] and record["level"], record
    REPORTS.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(record) for record in [*nginx, *app]]
    lines.append(json.dumps({"response": {"status": response.status_code,
                                          "X-Request-ID": response.headers["X-Request-ID"]}}))
    (REPORTS / "one-request.jsonl").write_text("\n".join(lines) + "\n")
    progress(f"  one request through the logs: {REPORTS / 'one-request.jsonl'}")


@pytest.mark.parametrize("sent", [None, "", "bad id!", "x" * 65, 'quote"d'])
def test_missing_or_malformed_request_id_is_replaced_by_nginx(stack, http, sent):
    headers = {"X-Request-ID": sent} if sent is not None else {}
    response = http.get(f"{BASE_URL}/api/whoami", headers=headers, timeout=10)
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) == 32 and int(request_id, 16) >= 0, request_id  # nginx's $request_id
    nginx, app = trace(stack, request_id, response.headers["X-Served-By"])
    assert len(nginx) == 1 and any(r.get("logger") == "board.access" for r in app)


def test_every_json_error_carries_the_request_id(http):
    """nginx's own errors (errors/*.json through SSI) and the app's."""
    cases = {
        "nginx 404 (static)": http.get(f"{BASE_URL}/static/no-such-file.css", timeout=5),
        "nginx 413": http.post(f"{BASE_URL}/api/messages", data=b"x" * (2 * 1024 * 1024), timeout=10,
                               headers={"Content-Type": "application/json"}),
        "app 400": http.post(f"{BASE_URL}/api/messages", data=b"{", timeout=5,
                             headers={"Content-Type": "application/json", "X-Request-ID": "err-check-1"}),
    }
    for name, response in cases.items():
        assert response.status_code >= 400 and response.headers["Content-Type"].startswith("application/json"), name
        body = response.json()
        assert body["error"] and body["request_id"] == response.headers["X-Request-ID"], (name, body)
    assert cases["app 400"].json()["request_id"] == "err-check-1"


def test_edge_unavailable_json_carries_the_request_id(stack):
    """nginx's own 503 (@edge_unavailable) when no app container answers: its return
    string has the id. Read from the configuration nginx loaded (stopping every app
    container here would cost the suite a minute)."""
    code, dump = stack.exec("nginx", ["nginx", "-T"])
    assert code == 0
    block = dump[dump.index("location @edge_unavailable"):]
    block = block[:block.index("}")]
    assert '"request_id": "$req_id"' in block, block


# --- structured logs -----------------------------------------------------------------------

def test_a_normal_start_logs_only_json_and_no_error(stack, http):
    """Restart nginx and one container of each app server; everything they log from
    that start on, a few requests included, is one JSON object per line, none at
    ERROR or above. (nginx's entrypoint says which certificate it uses, in plain text:
    the one exception, lines starting with `edge:`.)"""
    containers = [stack.container("nginx"), stack.containers("wsgi")[0], stack.containers("asgi")[0]]
    for container in containers:
        container.restart(timeout=20)
    for service in ("nginx", "wsgi", "asgi"):
        stack.wait_healthy(service, len(stack.containers(service)))
    for _ in range(10):
        assert http.get(f"{BASE_URL}/api/whoami", timeout=10).status_code == 200
    for container in containers:
        container.reload()
        # StartedAt is UTC with nanoseconds: keep the fraction, or the lines of the
        # second before the restart (an earlier test's requests) count as the start's.
        whole, _, fraction = container.attrs["State"]["StartedAt"].rstrip("Z").partition(".")
        since = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{fraction or 0}")
        records, other = json_lines(container, since=since)
        if stack.service_of(container) == "nginx":
            other = [line for line in other if not line.startswith("edge: ")]
        assert records and not other, (container.name, other[:5])
        bad = [r for r in records if r.get("level", "").upper() in ("ERROR", "CRITICAL", "FATAL")]
        assert not bad, (container.name, bad)
        for record in records:
            assert {"time", "level", "container"} <= set(record), (container.name, record)


@pytest.mark.parametrize("service", ["wsgi", "asgi"])
def test_a_traceback_is_one_json_record(stack, service):
    """What Django logs for a 500 (django.request, with the exception), through the
    container's own logging configuration: one line, the traceback inside."""
    script = (
        "import django, logging; django.setup()\n"
        "try:\n    1 / 0\n"
        "except ZeroDivisionError:\n    logging.getLogger('django.request').exception('Internal Server Error: /x')\n"
    )
    container = stack.containers(service)[0]
    result = container.exec_run(["python", "-c", script], stdout=False, stderr=True)
    lines = [line for line in result.output.decode().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    assert record["level"] == "ERROR" and "ZeroDivisionError" in record["exc_info"], record
    assert "Traceback (most recent call last)" in record["exc_info"]


def test_gunicorn_control_socket_is_off(stack):
    """gunicorn >= 25.1's control socket wanted $HOME (read-only): disabled, not failing."""
    for container in stack.containers("wsgi"):
        records, _ = json_lines(container)
        assert not [r for r in records if "Control server" in r.get("message", "")], container.name


# --- metrics and alerts ----------------------------------------------------------------------

def test_every_metrics_target_is_up(stack, monitoring):
    def all_up():
        targets = prometheus("/api/v1/targets", state="active")["activeTargets"]
        jobs = {t["labels"]["job"] for t in targets}
        app = [t for t in targets if t["labels"]["job"] == "app"]
        ok = jobs == SCRAPE_JOBS and len(app) == 4 and all(t["health"] == "up" for t in targets)
        return targets if ok else None

    targets = wait_for("every target up (app x4, nginx, postgres, redis, edge_tls, pgbackrest, prometheus)", all_up, 60)
    services = sorted(t["labels"]["service"] for t in targets if t["labels"]["job"] == "app")
    assert services == ["asgi", "asgi", "wsgi", "wsgi"]
    # The exporters really reach their targets (not just answer Prometheus).
    for query in ("nginx_up", "pg_up", "redis_up", "probe_success", "pgbackrest_exporter_status"):
        result = prometheus("/api/v1/query", query=query)["result"]
        assert result and all(r["value"][1] == "1" for r in result), (query, result)


def test_app_metrics_count_requests_by_route_and_status(stack, http, monitoring):
    def count():
        result = prometheus("/api/v1/query", query='sum(django_http_requests_total{route="api/whoami",status="200"})')
        return float(result["result"][0]["value"][1]) if result["result"] else 0.0

    before = count()
    for _ in range(20):
        assert http.get(f"{BASE_URL}/api/whoami", timeout=10).status_code == 200
    wait_for("20 more api/whoami 200s in django_http_requests_total", lambda: count() >= before + 20, 15)
    buckets = prometheus("/api/v1/query", query='django_http_request_duration_seconds_bucket{route="api/whoami"}')
    assert buckets["result"], "no latency histogram for api/whoami"


def test_sigkill_of_an_app_container_fires_its_alert_until_it_is_back(stack, monitoring, progress):
    def steady():
        expected = prometheus("/api/v1/query", query="service:app_ready:expected")["result"]
        counts = {r["metric"]["service"]: r["value"][1] for r in expected}
        return counts == {"wsgi": "2", "asgi": "2"} and not firing("AppContainerDown")

    wait_for("both app services at 2 ready containers, no alert", steady, 60)
    victim = stack.containers("wsgi")[0]
    count = stack.restart_count(victim)
    crash(victim)
    killed = time.monotonic()
    alerts = wait_for("AppContainerDown firing", lambda: firing("AppContainerDown"), 30, interval=0.1)
    fired = time.monotonic() - killed
    assert [a["labels"]["service"] for a in alerts] == ["wsgi"], alerts
    wait_restarted(stack, victim, count)
    stack.wait_healthy("wsgi", 2)
    healthy = time.monotonic() - killed
    wait_for("AppContainerDown resolved", lambda: not firing("AppContainerDown"), 30, interval=0.1)
    resolved = time.monotonic() - killed
    summary = {"container": victim.name, "alert_firing_s": round(fired, 1), "container_healthy_s": round(healthy, 1),
               "alert_resolved_s": round(resolved, 1)}
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "sigkill-alert.json").write_text(json.dumps(summary) + "\n")
    progress(f"  SIGKILL alert timeline: {summary}")


def test_alert_rules_are_loaded(monitoring):
    groups = prometheus("/api/v1/rules")["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"] if rule["type"] == "alerting"}
    assert {"AppContainerDown", "AppContainerNotReady", "AppErrorRateHigh", "AppLatencyP99High",
            "EdgeCertificateExpiresSoon", "BackupTooOld"} <= names, names
    unhealthy = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r.get("health") != "ok"]
    assert not unhealthy, unhealthy


# --- what expires slowly: the edge's certificate, the newest backup ----------------------------

def site_name(stack):
    """The first of the site's names (nginx's SITE_HOSTS), as the probe sends it."""
    env = dict(item.split("=", 1) for item in stack.container("nginx").attrs["Config"]["Env"])
    return env["SITE_HOSTS"].split(",")[0].lstrip(".")


def served_certificate_not_after(name, ca_file):
    """notAfter (Unix time) of the certificate the edge serves to a client sending `name` as
    SNI: a real handshake on 127.0.0.1:443, verified against the edge's certificate."""
    context = ssl.create_default_context(cafile=ca_file)
    with socket.create_connection(("127.0.0.1", 443), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            return ssl.cert_time_to_seconds(tls.getpeercert()["notAfter"])


def value(query):
    """The single value of an instant query, or None when it has no result."""
    result = prometheus("/api/v1/query", query=query)["result"]
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


def alert_rules():
    groups = prometheus("/api/v1/rules", type="alert")["groups"]
    return {rule["name"]: rule for group in groups for rule in group["rules"]}


def newest_backup_stop(stack):
    """The stop time (Unix) of the newest backup of any type, from `pgbackrest info`."""
    code, out = stack.exec("backup", ["pgbackrest", "--stanza=main", "--log-level-console=warn", "info",
                                      "--output=json"])
    assert code == 0, out
    stops = [backup["timestamp"]["stop"] for backup in json.loads(out)[0]["backup"]]
    assert stops, out
    return max(stops)


def test_probe_measures_the_certificate_the_edge_serves(stack, ca_file, monitoring):
    name = site_name(stack)
    not_after = served_certificate_not_after(name, ca_file)
    expiry = wait_for("probe_ssl_earliest_cert_expiry", lambda: value('probe_ssl_earliest_cert_expiry{job="edge_tls"}'),
                      30)
    assert expiry == not_after, (expiry, not_after, name)
    assert value('probe_success{job="edge_tls"}') == 1
    # The probe sends the site's name as SNI (the `hostname` parameter), through nginx's HTTPS port.
    (target,) = [t for t in prometheus("/api/v1/targets", state="active")["activeTargets"]
                 if t["labels"]["job"] == "edge_tls"]
    assert f"hostname={name}" in target["scrapeUrl"] and "target=nginx%3A8443" in target["scrapeUrl"], target


def test_backup_age_metric_matches_pgbackrest_info(stack, monitoring, progress):
    """pgbackrest-exporter recomputes the age at each collection (every 15 s): catch a fresh
    one, then compare with `pgbackrest info`'s newest backup, read now."""
    query = 'pgbackrest_backup_since_last_completion_seconds{backup_type="incr",stanza="main"}'
    first = wait_for("the newest backup's age", lambda: value(query), 40)
    fresh = wait_for("a new collection", lambda: (v := value(query)) is not None and v != first and v, 25, interval=0.2)
    expected = time.time() - newest_backup_stop(stack)
    # The exporter reads the clock (whole seconds) before it runs `pgbackrest info` (about a
    # second here), then Prometheus scrapes it (every 1 s): so a fresh value is behind by a few.
    assert -1 <= expected - fresh <= 5, (expected, fresh)
    # The newest archived WAL: PostgreSQL's archiver statistics, through postgres-exporter.
    wal = wait_for("pg_stat_archiver_last_archive_age", lambda: value("pg_stat_archiver_last_archive_age"), 15)
    scraped = time.time()
    archived = float(stack.sql("SELECT extract(epoch FROM last_archived_time) FROM pg_stat_archiver"))
    # postgres-exporter is scraped every 5 s: its age is that much behind at most.
    assert -1 <= (scraped - archived) - wal <= 7, (scraped - archived, wal)
    summary = {"backup_age_metric_s": fresh, "backup_age_pgbackrest_info_s": round(expected, 2),
               "wal_age_metric_s": round(wal, 2), "wal_age_pg_stat_archiver_s": round(scraped - archived, 2)}
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "backup-age.json").write_text(json.dumps(summary) + "\n")
    progress(f"  backup and WAL ages: {summary}")


def test_certificate_and_backup_alerts_fire_past_their_limits_only(stack, monitoring, progress):
    """Inactive with the defaults, on real values; firing when the limits are set (through
    their variables) past what holds now: the certificate (90 days) has fewer than 1000 days
    left, and the newest backup is older than 0.001 h (3.6 s)."""
    names = ("EdgeCertificateExpiresSoon", "BackupTooOld")
    metrics = ('probe_ssl_earliest_cert_expiry{job="edge_tls"}',
               'pgbackrest_backup_since_last_completion_seconds{backup_type="incr"}')

    def inactive_on_real_values():
        for query in metrics:
            wait_for(query, lambda q=query: value(q) is not None, 40)
        time.sleep(2)  # two evaluations with the values present
        rules = alert_rules()
        assert "/ 86400 < 14" in rules["EdgeCertificateExpiresSoon"]["query"], rules["EdgeCertificateExpiresSoon"]
        assert "> 26 * 3600" in rules["BackupTooOld"]["query"], rules["BackupTooOld"]  # 24 h diffs + 2
        for name in names:
            assert rules[name]["health"] == "ok" and rules[name]["state"] == "inactive", rules[name]

    inactive_on_real_values()
    limits = {"ALERT_CERT_EXPIRY_DAYS": "1000", "ALERT_BACKUP_MAX_AGE_HOURS": "0.001"}
    try:
        started = time.monotonic()
        compose("--profile", "monitoring", "up", "--detach", "--wait", "--wait-timeout", "60", "prometheus",
                env=limits)
        summary = {"prometheus_recreated_s": round(time.monotonic() - started, 1)}
        for name in names:
            (alert,) = wait_for(f"{name} firing", lambda n=name: firing(n), 45)
            summary[name] = {"firing_s": round(time.monotonic() - started, 1),
                             "summary": alert["annotations"]["summary"]}
        REPORTS.mkdir(parents=True, exist_ok=True)
        (REPORTS / "slow-alerts.json").write_text(json.dumps(summary) + "\n")
        progress(f"  certificate and backup alerts: {summary}")
        assert 85 <= float(firing("EdgeCertificateExpiresSoon")[0]["value"]) <= 90  # days left, self-signed: 90
        assert firing("BackupTooOld")[0]["labels"]["stanza"] == "main"
    finally:
        compose("--profile", "monitoring", "up", "--detach", "--wait", "--wait-timeout", "60", "prometheus",
                env={name: "" for name in limits})
    inactive_on_real_values()


# --- metrics stay on the backend network -------------------------------------------------

@pytest.mark.parametrize("path", ["/metrics", "/stub_status", "/nginx_status", "/status", "/_errors/404.json"])
def test_metrics_are_not_reachable_through_the_public_site(http, path):
    for url in (f"{BASE_URL}{path}", f"{HTTP_URL}{path}"):
        response = http.get(url, timeout=5, allow_redirects=False)
        assert response.status_code in (301, 308, 404), (url, response.status_code)
        for marker in ("# TYPE", "Active connections", "django_http_requests_total", "<!--#"):
            assert marker not in response.text, (url, marker)


def test_only_prometheus_ui_is_published_on_loopback(stack, monitoring):
    """The metrics ports (app 9100, nginx 8082, exporters) are not published; Prometheus's
    UI is, on 127.0.0.1 only."""
    for container in stack.containers():
        ports = {p: b for p, b in (container.attrs["NetworkSettings"]["Ports"] or {}).items() if b}
        service = stack.service_of(container)
        if service == "prometheus":
            assert set(ports) == {"9090/tcp"} and {b["HostIp"] for b in ports["9090/tcp"]} == {"127.0.0.1"}, ports
        elif service != "nginx":
            assert not ports, (container.name, ports)


def test_monitoring_containers_are_hardened_like_the_rest(stack, monitoring):
    """The least-privilege and non-root checks of the suite, with the monitoring profile up."""
    running = {stack.service_of(c) for c in stack.containers()}
    assert set(MONITORING) <= running, running
    test_least_privilege.test_every_container_is_locked_down(stack)
    test_least_privilege.test_root_filesystem_really_is_read_only(stack)
    test_least_privilege.test_processes_have_no_effective_capabilities(stack)
    test_containers_nonroot.test_every_container_is_configured_non_root(stack)
    test_containers_nonroot.test_no_process_runs_as_root(stack)
    for container in stack.containers():
        if stack.service_of(container) in MONITORING:
            config = container.attrs["Config"]
            assert config.get("Healthcheck", {}).get("Test"), container.name
            assert container.attrs["State"]["Health"]["Status"] == "healthy", container.name
