"""Requests spread over all four app containers; async routes reach only uvicorn."""

from collections import Counter

from stack import BASE_URL


def test_requests_spread_over_all_app_containers(stack, http):
    hostnames = stack.app_hostnames()
    assert len(hostnames) == 4
    seen = Counter(http.get(f"{BASE_URL}/api/whoami", timeout=5).headers["X-Served-By"] for _ in range(80))
    assert set(seen) == set(hostnames), seen
    # Round-robin: nobody gets far more than the fair share of 20.
    assert min(seen.values()) >= 10, seen


def test_whoami_reports_the_right_server_kind(stack, http):
    wsgi, asgi = set(stack.app_hostnames("wsgi")), set(stack.app_hostnames("asgi"))
    for _ in range(16):
        body = http.get(f"{BASE_URL}/api/whoami", timeout=5).json()
        expected = "gunicorn" if body["container"] in wsgi else "uvicorn"
        assert body["container"] in wsgi | asgi
        assert body["server"] == expected


def test_async_routes_are_answered_only_by_uvicorn(stack, http):
    asgi = set(stack.app_hostnames("asgi"))
    seen = Counter()
    for _ in range(20):
        response = http.get(f"{BASE_URL}/api/messages/poll", params={"timeout": 0}, timeout=5)
        assert response.status_code == 200
        seen[response.headers["X-Served-By"]] += 1
    assert set(seen) == asgi, seen
