"""Open streams cannot survive their container: an SSE stream and a WebSocket on a
uvicorn container that crashes are cut. They must reconnect by themselves, to
the other uvicorn container, and miss nothing (SSE: Last-Event-ID; WebSocket:
a "resume" message). Measures how long the reconnect takes."""

import json
import threading
import time
import uuid

import pytest
from faults import crash, wait_restarted
from report import REPORTS
from stack import BASE_URL
from streams import SseClient, WebSocketClient, drain, wait_for


@pytest.mark.failover
def test_failover_streams_reconnect_and_miss_nothing(stack, http, ca_file, progress, failover_reports):
    stack.wait_app_healthy()
    deadline = time.monotonic() + 90
    sse = SseClient(ca_file, deadline)
    sse.start()
    wait_for(lambda: sse.connections, 10, "the SSE stream")
    victim_host = sse.connections[0][1]
    ws = WebSocketClient(ca_file, deadline, want_container=victim_host)
    ws.start()
    wait_for(lambda: ws.connections, 15, "a WebSocket on the same container",
             lambda: f"(SSE connections: {sse.connections}; WebSocket attempts: {ws.attempts[-12:]})")
    victim = stack.app_hostnames("asgi")[victim_host]
    progress(f"[stream-reconnect] SSE and WebSocket on {victim_host}; crashing it")

    posted, stop_writer = [], threading.Event()

    def writer():  # bounded: one message every 100 ms for at most 20 s
        end = time.monotonic() + 20
        while not stop_writer.is_set() and time.monotonic() < end:
            response = http.post(f"{BASE_URL}/api/messages", json={"text": f"stream {uuid.uuid4()}"}, timeout=5)
            if response.status_code == 201:
                posted.append(response.json()["id"])
            time.sleep(0.1)

    writing = threading.Thread(target=writer, daemon=True)
    writing.start()
    time.sleep(1)
    count = stack.restart_count(victim)
    killed_at = time.time()
    crash(victim)
    wait_for(lambda: len(sse.connections) >= 2 and len(ws.connections) >= 2, 20, "both clients to reconnect")
    wait_restarted(stack, victim, count)
    time.sleep(2)
    stop_writer.set()
    writing.join(timeout=10)
    drain(sse, ws, posted)
    stack.wait_app_healthy()

    result = {
        "scenario": "stream-reconnect",
        "killed": victim_host,
        "messages_posted": len(posted),
        "sse": {"reconnect_s": round(sse.connections[1][0] - killed_at, 3), "reconnected_to": sse.connections[1][1],
                "missed": len(set(posted) - sse.ids)},
        "websocket": {"reconnect_s": round(ws.connections[1][0] - killed_at, 3),
                      "reconnected_to": ws.connections[1][1], "missed": len(set(posted) - ws.ids)},
    }
    (REPORTS / "stream-reconnect.json").write_text(json.dumps(result, indent=2))
    progress(f"[stream-reconnect] {json.dumps(result)}")
    assert result["sse"]["missed"] == 0 and result["websocket"]["missed"] == 0, result
    assert result["sse"]["reconnect_s"] < 5 and result["websocket"]["reconnect_s"] < 5, result
