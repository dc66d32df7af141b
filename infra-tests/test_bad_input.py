"""Bad input, class by class: each answered quickly with the right status and
nothing leaked, while normal traffic flows in parallel with zero failures.
Writes the classes and results to reports/badinput.json."""

import json
import socket
import ssl
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from stack import BASE_URL
from traffic import Traffic
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

REPORT = Path(__file__).resolve().parent / "reports" / "badinput.json"
LEAKS = ("Traceback", "nginx/", "Django", "psycopg", "File \"/")
results = []


def record(name, expected, got, seconds, ok):
    results.append({"class": name, "expected": expected, "got": got, "seconds": round(seconds, 3), "ok": ok})


@pytest.fixture(scope="module")
def background(stack, ca_file):
    """Normal traffic during every bad-input class; it must not notice any of them."""
    with Traffic(ca_file, rate=40, workers=4, min_requests=0, max_seconds=240, label="normal traffic") as traffic:
        yield traffic
        records = traffic.stop(wait_for_minimum=False)
    failed = [r for r in records if not r.ok]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({"classes": results, "normal_traffic": {
        "requests": len(records), "failed": len(failed), "failures": [r.as_dict() for r in failed[:20]]}}, indent=2))
    assert len(records) > 100 and failed == [], failed[:5]


def tls_socket(ca_file, timeout=5):
    context = ssl.create_default_context(cafile=ca_file)
    context.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", 443), timeout=timeout)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def raw_request(ca_file, data):
    with tls_socket(ca_file) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionError, ssl.SSLError):
            pass
    return b"".join(chunks).decode(errors="replace")


def check(name, expected, call, limit=5.0):
    started = time.monotonic()
    got, text = call()
    seconds = time.monotonic() - started
    leaked = [word for word in LEAKS if word in (text or "")]
    ok = got == expected and not leaked and seconds < limit
    record(name, expected, got, seconds, ok)
    assert got == expected, (name, got)
    assert not leaked, (name, leaked)
    assert seconds < limit, (name, seconds)


def status_of(response):
    return response.status_code, response.text


def test_unknown_host_is_dropped(background, http):
    def call():
        try:
            http.get(f"{BASE_URL}/", headers={"Host": "evil.example"}, timeout=5)
            return "answered", ""
        except requests.ConnectionError:
            return "dropped", ""
    check("unknown Host header", "dropped", call)


def test_body_over_the_limit_is_413(background, http):
    check("body over 1 MB", 413, lambda: status_of(http.post(
        f"{BASE_URL}/api/messages", data=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"},
        timeout=10)))


def test_headers_too_large_is_400(background, http):
    check("headers too large", 400, lambda: status_of(http.get(
        f"{BASE_URL}/", headers={"X-Big": "y" * 9000}, timeout=5)))


def test_oversized_query_string_is_414(background, http):
    check("oversized query string", 414, lambda: status_of(http.get(
        f"{BASE_URL}/api/messages?q={'z' * 9000}", timeout=5)))


def test_malformed_request_line_is_400(background, ca_file):
    def call():
        text = raw_request(ca_file, b"GARBAGE / NOT-HTTP\r\n\r\n")
        return int(text.split()[1]) if text.startswith("HTTP/") else text[:40], text
    check("malformed request line", 400, call)


def test_invalid_json_and_wrong_content_type_are_400_with_json(background, http):
    def invalid_json():
        r = http.post(f"{BASE_URL}/api/messages", data="{oops", headers={"Content-Type": "application/json"},
                      timeout=5)
        return (r.status_code if r.json().get("error") == "invalid_json" else "no JSON error"), r.text

    def wrong_type():
        r = http.post(f"{BASE_URL}/api/messages", data="text=hi", timeout=5,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
        return (r.status_code if r.json().get("error") == "unsupported_content_type" else "no JSON error"), r.text

    check("invalid JSON", 400, invalid_json)
    check("wrong content type", 400, wrong_type)


@pytest.mark.parametrize("path", ["/static/../../../etc/passwd", "/static/..%2f..%2f..%2fetc/passwd",
                                  "/static/%2e%2e/%2e%2e/etc/passwd", "/media/../../etc/passwd"])
def test_path_traversal_finds_nothing(background, ca_file, path):
    def call():
        text = raw_request(ca_file, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        status = int(text.split()[1]) if text.startswith("HTTP/") else 0
        return ("refused" if status in (400, 404) and "root:" not in text else status), text
    check(f"path traversal {path}", "refused", call)


def test_invalid_utf8_in_path_is_not_a_server_error(background, ca_file):
    def call():
        request = b"GET /api/\xff\xfe/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        text = raw_request(ca_file, request)
        status = int(text.split()[1]) if text.startswith("HTTP/") else 0
        return ("client error" if 400 <= status < 500 else status), text
    check("invalid UTF-8 in path", "client error", call)


def test_form_post_without_csrf_token_is_403(background, http):
    check("form POST without CSRF token", 403, lambda: status_of(http.post(
        f"{BASE_URL}/messages", data={"text": "no token"}, headers={"Referer": f"{BASE_URL}/"}, timeout=5)))


def test_method_not_allowed_is_405(background, http):
    check("method not allowed", 405, lambda: status_of(http.delete(f"{BASE_URL}/api/messages", timeout=5)))


def test_websocket_from_a_foreign_origin_is_refused(background, ca_file):
    def call():
        context = ssl.create_default_context(cafile=ca_file)
        try:
            with connect("wss://127.0.0.1/ws/messages", ssl=context, origin="https://evil.example", open_timeout=5):
                return "accepted", ""
        except InvalidStatus as refused:
            return refused.response.status_code, ""
    check("WebSocket from a foreign Origin", 403, call)


def test_app_port_is_not_reachable_from_outside(background):
    def call():
        try:
            socket.create_connection(("127.0.0.1", 8000), timeout=2).close()
            return "reachable", ""
        except OSError:
            return "unreachable", ""
    check("app container port from outside", "unreachable", call)


def test_write_flood_gets_429(background, http):
    def one(_):
        r = http.post(f"{BASE_URL}/api/messages", data="{flood", headers={"Content-Type": "application/json"},
                      timeout=5)
        return r.status_code

    def call():
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(one, range(400)))
        return (429 if 429 in statuses else sorted(set(statuses))), ""
    check("flood on the write API", 429, call)


def test_login_flood_gets_429(background, http):
    def call():
        statuses = [http.post(f"{BASE_URL}/admin/login/", data={"username": "admin", "password": str(uuid.uuid4())},
                              timeout=5).status_code for _ in range(20)]
        return (429 if 429 in statuses else sorted(set(statuses))), ""
    check("flood on the admin login", 429, call)


def test_slow_clients_do_not_starve_normal_ones(background, ca_file, http):
    """300 connections that send half a request line, slowly (slowloris), for 6 s."""
    stop = threading.Event()
    opened = []

    def slow():
        try:
            sock = tls_socket(ca_file, timeout=10)
            opened.append(sock)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            while not stop.wait(1.0):
                sock.sendall(b"X-Slow: 1\r\n")
        except OSError:
            pass

    def call():
        threads = [threading.Thread(target=slow, daemon=True) for _ in range(300)]
        for t in threads:
            t.start()
        time.sleep(2)
        started = time.monotonic()
        statuses = [http.get(f"{BASE_URL}/api/whoami", timeout=5).status_code for _ in range(20)]
        elapsed = time.monotonic() - started
        time.sleep(4)
        stop.set()
        for sock in opened:
            sock.close()
        for t in threads:
            t.join(timeout=5)
        served = statuses == [200] * 20 and elapsed < 5
        return ("served" if served else f"{statuses} in {elapsed:.1f} s"), ""
    check("slow clients (slowloris)", "served", call, limit=20)  # the class itself lasts about 7 s
