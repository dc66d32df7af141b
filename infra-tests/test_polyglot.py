"""The `polyglot` profile: the same board in Tomcat (Java servlet, JDBC pool) and PHP-FPM
(PDO pgsql), behind the site's nginx at /java/ and /php/. First with the profile off (the
session's stack: nginx must start with upstream names that do not resolve), then with
its services started inside the test project, where they get the same checks as every
other container, and a crash of one of each under traffic."""

import time
import uuid

import faults
import pytest
from scenario import assert_no_user_visible_failure
from stack import BASE_URL, ROOT, compose
from test_containers_nonroot import assert_configured_non_root, assert_no_root_process, assert_shell_not_root
from test_least_privilege import (
    assert_locked_down,
    assert_no_docker_socket,
    assert_no_effective_capabilities,
    assert_root_filesystem_read_only,
)
from traffic import check_messages

pytestmark = pytest.mark.polyglot

SERVICES = ("tomcat", "php")
APPS = {"tomcat": "java", "php": "php"}  # service -> its route prefix
STATIC = {app: (ROOT / "polyglot" / service / "static" / "board.css").read_bytes() for service, app in APPS.items()}
TITLE = {"java": "Message board (Java)", "php": "Message board (PHP)"}


def test_profile_off_nginx_starts_and_the_routes_say_unavailable(stack, http):
    """Runs first, before the profile is started: nginx was started (by the session's
    stack) with `server tomcat:8080 resolve` and `server php:9000 resolve` for names no
    container answers to, and serves the site; /java/ and /php/ get the edge's JSON 503."""
    assert not stack.containers("tomcat") and not stack.containers("php"), "the profile must be off by default"
    nginx = stack.container("nginx")
    nginx.reload()
    assert nginx.attrs["State"]["Health"]["Status"] == "healthy" and nginx.attrs["RestartCount"] == 0
    dump = nginx.exec_run(["nginx", "-T"], stderr=False).output.decode()
    assert "server tomcat:8080 resolve" in dump and "server php:9000 resolve" in dump
    for path in ("/java/", "/php/", "/java/api/messages", "/php/api/messages"):
        response = http.get(f"{BASE_URL}{path}", timeout=5)
        assert response.status_code == 503, (path, response.status_code)
        assert response.json()["error"] == "service_unavailable" and response.headers["Retry-After"] == "1"
    # The Django routes answer as always (their own tests cover them in full).
    assert http.get(f"{BASE_URL}/api/whoami", timeout=5).status_code == 200


@pytest.fixture(scope="module")
def polyglot(stack):
    """Tomcat and PHP-FPM started inside the test project (so every check that iterates its
    containers sees them), removed after this module. --no-deps: migrate has already run."""
    try:
        compose("--profile", "polyglot", "up", "--detach", "--wait", "--wait-timeout", "180", "--no-deps", *SERVICES)
    except Exception:
        compose("--profile", "polyglot", "logs", "--tail", "40", *SERVICES, check=False)
        raise
    yield {service: stack.containers(service) for service in SERVICES}
    compose("--profile", "polyglot", "rm", "--stop", "--force", *SERVICES, check=False)


def hostnames(stack, service):
    return set(stack.app_hostnames(service))


@pytest.mark.parametrize("service", SERVICES)
def test_routes(polyglot, stack, http, service):
    app = APPS[service]
    hosts = hostnames(stack, service)
    assert len(hosts) == 2, hosts
    served = set()
    for _ in range(20):
        page = http.get(f"{BASE_URL}/{app}/", timeout=5)
        assert page.status_code == 200 and TITLE[app] in page.text and page.text.rstrip().endswith("</html>")
        assert f'href="/{app}/static/board.css"' in page.text
        served.add(page.headers["X-Served-By"])
    assert served == hosts, f"nginx balances /{app}/ over both {service} containers: {served} vs {hosts}"
    # The JSON API, the app's own 404, and the edge's headers on its answers.
    listing = http.get(f"{BASE_URL}/{app}/api/messages?limit=3", timeout=5)
    assert listing.status_code == 200 and check_messages(listing) and listing.headers["X-Served-By"] in hosts
    assert "Strict-Transport-Security" in listing.headers and "X-Powered-By" not in listing.headers
    missing = http.get(f"{BASE_URL}/{app}/no-such-page", timeout=5)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    # Static files: nginx's own answer (no app container named), the file from the repository.
    css = http.get(f"{BASE_URL}/{app}/static/board.css", headers={"Accept-Encoding": "identity"}, timeout=5)
    assert css.status_code == 200 and css.content == STATIC[app] and "X-Served-By" not in css.headers
    assert css.headers["Content-Type"].startswith("text/css")
    assert http.get(f"{BASE_URL}/{app}/static/nope.css", timeout=5).status_code == 404


def post(http, path, text, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    response = http.post(f"{BASE_URL}{path}", json={"text": text}, headers=headers, timeout=10)
    assert response.status_code == 201, (path, response.status_code, response.text)
    return response


def texts(http, path):
    return [m["text"] for m in http.get(f"{BASE_URL}{path}?limit=50", timeout=5).json()["messages"]]


@pytest.mark.parametrize("writer", ["django", "java", "php"])
def test_one_board_for_all_three(polyglot, http, writer):
    """A message written through any of the three apps is read back through all three,
    in the JSON APIs and on the pages, with the same fields."""
    prefix = "" if writer == "django" else f"/{writer}"
    text = f"from {writer} {uuid.uuid4()} <é>"
    created = post(http, f"{prefix}/api/messages", text).json()
    assert set(created) == {"id", "text", "created_at", "served_by"} and created["text"] == text
    for reader in ("", "/java", "/php"):
        listing = http.get(f"{BASE_URL}{reader}/api/messages?after={created['id'] - 1}&limit=1", timeout=5).json()
        assert listing["messages"] == [created], (reader, listing)
        page = http.get(f"{BASE_URL}{reader}/", timeout=5).text
        assert text.replace("<", "&lt;").replace(">", "&gt;") in page, f"{reader or 'django'} page lacks {text!r}"


def test_same_json_as_django(polyglot, stack, http):
    """The three APIs list the same rows identically, timestamps included: microseconds
    with a trailing zero, and none at all (Python's isoformat() writes 6 digits or none)."""
    tag = uuid.uuid4()
    rows = stack.sql("INSERT INTO board_message (text, created_at, served_by) VALUES "
                     f"('json {tag} a', '2026-01-02 03:04:05.120000+00', 'psql'), "
                     f"('json {tag} b', '2026-01-02 03:04:05+00', 'psql') RETURNING id")
    ids = [int(line) for line in rows.splitlines() if line.strip().isdigit()]  # not psql's "INSERT 0 2"
    assert len(ids) == 2, rows
    after = min(ids) - 1
    listings = {app: http.get(f"{BASE_URL}{prefix}/api/messages?after={after}&limit=2", timeout=5).json()
                for app, prefix in (("django", ""), ("java", "/java"), ("php", "/php"))}
    assert [m["created_at"] for m in listings["django"]["messages"]] == \
        ["2026-01-02T03:04:05.120000+00:00", "2026-01-02T03:04:05+00:00"]
    assert listings["java"] == listings["django"] and listings["php"] == listings["django"], listings

@pytest.mark.parametrize("app", ["java", "php"])
def test_idempotency_key_as_django(polyglot, stack, http, app):
    key, text = str(uuid.uuid4()), f"keyed {uuid.uuid4()}"
    first = post(http, f"/{app}/api/messages", text, key)
    again = post(http, f"/{app}/api/messages", text, key)
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    other = http.post(f"{BASE_URL}/{app}/api/messages", json={"text": "another"}, headers={"Idempotency-Key": key},
                      timeout=10)
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    assert stack.sql(f"SELECT count(*) FROM board_message WHERE text = '{text}'") == "1"
    assert stack.sql(f"SELECT scope, status FROM board_idempotencyrecord WHERE key = '{key}'") == \
        f"POST /{app}/api/messages\t201"
    # A key belongs to one route, as in Django: the same key on Django's route is a new write.
    assert post(http, "/api/messages", text, key).headers.get("Idempotent-Replayed") is None
    # Bad requests get Django's answers.
    bad = http.post(f"{BASE_URL}/{app}/api/messages", data="{nope", headers={"Content-Type": "application/json"},
                    timeout=10)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_json"
    assert http.post(f"{BASE_URL}/{app}/api/messages", data="text=x", timeout=10).json()["error"] == \
        "unsupported_content_type"


@pytest.mark.parametrize("app", ["java", "php"])
def test_errors_have_the_stack_s_one_shape(polyglot, http, app):
    """A bad request gets the same JSON error as Django's (and nginx's): error, reason, and
    the request id the client sent, which nginx passes on."""
    answers = {}
    for prefix in ("", f"/{app}"):
        request_id = f"polyglot-{uuid.uuid4().hex[:16]}"
        response = http.post(f"{BASE_URL}{prefix}/api/messages", data="{nope", timeout=10,
                             headers={"Content-Type": "application/json", "X-Request-ID": request_id})
        assert response.status_code == 400, (prefix, response.text)
        body = response.json()
        assert list(body) == ["error", "reason", "request_id"], (prefix, body)
        assert body["request_id"] == request_id and body["reason"], (prefix, body)
        answers[prefix or "django"] = body["error"]
    assert answers["django"] == answers[f"/{app}"] == "invalid_json", answers


def test_the_page_form_writes_once_and_refuses_other_sites(polyglot, stack, http):
    for app in ("java", "php"):
        text = f"form {app} {uuid.uuid4()}"
        form = {"text": text, "key": str(uuid.uuid4())}
        for _ in range(2):  # a double submit of the same page
            response = http.post(f"{BASE_URL}/{app}/messages", data=form, allow_redirects=False, timeout=10)
            assert response.status_code == 303 and response.headers["Location"] == f"/{app}/"
        assert stack.sql(f"SELECT count(*) FROM board_message WHERE text = '{text}'") == "1"
        foreign = http.post(f"{BASE_URL}/{app}/messages", data={"text": "x", "key": "k"},
                            headers={"Origin": "https://evil.example"}, allow_redirects=False, timeout=10)
        assert foreign.status_code == 403


def test_hardened_like_every_container(polyglot, stack):
    """The checks of test_least_privilege.py and test_containers_nonroot.py, on these
    containers, plus what the profile promises: a healthcheck, a graceful stop signal,
    and the database password as a secret file, never in the environment."""
    password = (ROOT / "secrets" / "db_password").read_text().strip()
    for service in SERVICES:
        running = stack.containers(service)
        assert len(running) == 2, service
        for container in running:
            for check in (assert_locked_down, assert_no_docker_socket, assert_root_filesystem_read_only,
                          assert_no_effective_capabilities, assert_configured_non_root, assert_no_root_process,
                          assert_shell_not_root):
                check(container)
            config = container.attrs["Config"]
            assert config["Healthcheck"]["Test"][0] == "CMD", container.name
            assert config["StopSignal"] == {"tomcat": "SIGTERM", "php": "SIGQUIT"}[service], container.name
            assert config["StopTimeout"] == 15, container.name
            assert not any(password in item for item in config["Env"]), f"{container.name}: password in env"
            assert any(m["Destination"] == "/run/secrets/db_password" for m in container.attrs["Mounts"])


@pytest.mark.parametrize("service, exit_code", [("tomcat", 143), ("php", 0)])
def test_graceful_stop(polyglot, stack, service, exit_code):
    """`docker stop` sends the image's STOPSIGNAL (Tomcat: SIGTERM, its shutdown hook;
    PHP-FPM: SIGQUIT, its graceful stop): the server exits by itself, well before Docker
    would SIGKILL it (exit 137), and starts again to healthy."""
    container = stack.containers(service)[0]
    started = time.monotonic()
    container.stop(timeout=15)
    took = time.monotonic() - started
    container.reload()
    assert container.attrs["State"]["ExitCode"] == exit_code, container.attrs["State"]
    assert took < 12, f"{container.name} took {took:.1f} s to stop"
    container.start()
    stack.wait_healthy(service, 2, timeout=120)


def polyglot_mix():
    """GETs on the two apps' routes, half each: pages, JSON lists, static files."""
    mix = []
    for app in ("java", "php"):
        static = STATIC[app]
        mix += [
            (f"{app}-page", f"/{app}/", 2, lambda r, title=TITLE[app]: title in r.text and "</html>" in r.text),
            (f"{app}-messages", f"/{app}/api/messages?limit=5", 3, check_messages),
            (f"{app}-static", f"/{app}/static/board.css", 1, lambda r, static=static: r.content == static),
        ]
    return mix


@pytest.mark.failover
def test_sigkill_tomcat_and_php_under_traffic(polyglot, scenario):
    """0 failed GETs on /java/ and /php/, every keyed write through them acknowledged once,
    and both crashed containers back and taking their share within 2 s of being healthy."""
    kinds = tuple(kind for kind, *_ in polyglot_mix() if not kind.endswith("-static"))
    report = scenario("sigkill-tomcat-php", "SIGKILL of one tomcat and one php container's main process",
                      faults.sigkill(faults.one_of_each(*SERVICES)), services=SERVICES, mix=polyglot_mix(),
                      write_paths=("/java/api/messages", "/php/api/messages"), balanced_kinds=kinds)
    assert all(count >= 1 for count in report["restart_counts"].values()), report["restart_counts"]
    assert_no_user_visible_failure(report)
    served = report["served_by"]
    for back in report["fail_back"]:
        assert served.get(back["container"], 0) > 0, back
