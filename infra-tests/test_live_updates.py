"""WebSocket, SSE and long-poll clients hear about messages written through other containers."""

import contextlib
import json
import ssl
import threading
import time
import uuid

import pytest
from stack import BASE_URL
from websockets.sync.client import connect


def post_through_wsgi(stack, http, text):
    """POST until a gunicorn container accepted it: certainly not the WebSocket's container."""
    wsgi = set(stack.app_hostnames("wsgi"))
    for attempt in range(12):
        response = http.post(f"{BASE_URL}/api/messages", json={"text": f"{text} #{attempt}"}, timeout=5)
        assert response.status_code == 201
        if response.headers["X-Served-By"] in wsgi:
            return response.json()
    raise AssertionError("no POST reached a gunicorn container in 12 tries")


@contextlib.contextmanager
def posted_later(delay, stack, http, text):
    """POST through gunicorn `delay` seconds from now, in a thread that is joined (and
    whose error is raised) before the test ends, so no write leaks into the next test."""
    outcome = {}

    def post():
        try:
            outcome["message"] = post_through_wsgi(stack, http, text)
        except BaseException as error:  # handed to the test's thread below
            outcome["error"] = error

    timer = threading.Timer(delay, post)
    timer.start()
    try:
        yield outcome
    finally:
        timer.join(timeout=70)  # bounded: 12 POSTs with a 5 s timeout each
    if "error" in outcome:
        raise outcome["error"]


def test_websocket_clients_receive_a_message_posted_through_another_container(stack, http, ca_file):
    context = ssl.create_default_context(cafile=ca_file)
    with contextlib.ExitStack() as opened:
        # Two sockets: round-robin puts them on both uvicorn containers.
        sockets = [opened.enter_context(connect("wss://127.0.0.1/ws/messages", ssl=context,
                                                origin="https://127.0.0.1", open_timeout=5))
                   for _ in range(2)]
        message = post_through_wsgi(stack, http, f"ws {uuid.uuid4()}")
        for sock in sockets:
            deadline = time.monotonic() + 5
            while True:  # bounded: recv raises TimeoutError after the deadline
                event = json.loads(sock.recv(timeout=max(0.1, deadline - time.monotonic())))
                if event["type"] == "message" and event["message"]["id"] == message["id"]:
                    break
            assert event["message"]["text"] == message["text"]


def test_sse_stream_delivers_a_new_message(stack, http):
    text = f"sse {uuid.uuid4()}"
    with http.get(f"{BASE_URL}/api/messages/stream", stream=True, timeout=(5, 10)) as stream:
        assert stream.status_code == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        assert stream.headers["X-Served-By"] in stack.app_hostnames("asgi")
        found = False
        with posted_later(0.5, stack, http, text):
            for line in stream.iter_lines(decode_unicode=True):  # bounded: 10 s read timeout
                if line.startswith("data:") and text in line:
                    found = True
                    break
        assert found


def test_long_poll_returns_as_soon_as_a_message_arrives(stack, http):
    latest = http.get(f"{BASE_URL}/api/messages", params={"limit": 1}, timeout=5).json()["messages"]
    after = latest[0]["id"] if latest else 0
    text = f"poll {uuid.uuid4()}"
    with posted_later(1.0, stack, http, text):
        started = time.monotonic()
        response = http.get(f"{BASE_URL}/api/messages/poll", params={"after": after, "timeout": 20}, timeout=25)
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    texts = [m["text"] for m in response.json()["messages"]]
    assert any(text in t for t in texts), f"the poll after id {after} answered {texts}"
    assert elapsed < 15  # answered by the event, not by the timeout


@pytest.mark.parametrize("timeout", ["soon", "nan"])
def test_long_poll_refuses_a_timeout_that_is_not_a_number(http, timeout):
    response = http.get(f"{BASE_URL}/api/messages/poll", params={"timeout": timeout}, timeout=10)
    assert response.status_code == 400, response.text[:200]
    assert response.json()["error"] == "invalid_timeout", response.text


def test_each_server_declares_how_it_runs_async_code(stack, http):
    """gunicorn's request threads each run an event loop of their own, uvicorn runs one
    for every request: the start scripts say so (DJANGO_EVENT_LOOP), and live updates
    subscribe accordingly (app/board/live.py)."""
    seen = {}
    for _ in range(16):  # round-robin over the four app containers
        body = http.get(f"{BASE_URL}/api/whoami", timeout=5).json()
        seen.setdefault(body["server"], set()).add(body["event_loop"])
    assert seen == {"gunicorn": {"per-request"}, "uvicorn": {"shared"}}, seen


def test_a_bad_event_loop_setting_stops_the_app_with_a_clear_error(stack):
    container = stack.containers("asgi")[0]
    result = container.exec_run(["python", "-c", "import django; django.setup()"],
                                environment={"DJANGO_EVENT_LOOP": "threads"})
    output = result.output.decode(errors="replace")
    assert result.exit_code != 0, output
    assert "ImproperlyConfigured" in output and "DJANGO_EVENT_LOOP='threads'" in output, output[-500:]
