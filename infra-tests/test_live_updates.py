"""WebSocket, SSE and long-poll clients hear about messages written through other containers."""

import contextlib
import json
import ssl
import threading
import time
import uuid

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
        threading.Timer(0.5, lambda: post_through_wsgi(stack, http, text)).start()
        found = False
        for line in stream.iter_lines(decode_unicode=True):  # bounded: 10 s read timeout
            if line.startswith("data:") and text in line:
                found = True
                break
        assert found


def test_long_poll_returns_as_soon_as_a_message_arrives(stack, http):
    latest = http.get(f"{BASE_URL}/api/messages", params={"limit": 1}, timeout=5).json()["messages"]
    after = latest[0]["id"] if latest else 0
    text = f"poll {uuid.uuid4()}"
    threading.Timer(1.0, lambda: post_through_wsgi(stack, http, text)).start()
    started = time.monotonic()
    response = http.get(f"{BASE_URL}/api/messages/poll", params={"after": after, "timeout": 20}, timeout=25)
    assert response.status_code == 200
    assert any(text in m["text"] for m in response.json()["messages"])
    assert time.monotonic() - started < 15  # answered by the event, not by the timeout
