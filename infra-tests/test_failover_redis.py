"""Redis crashes and comes back. Pages and writes keep working (only what needs
Redis degrades: the long-poll answers 503 with a reason); SSE and WebSocket
clients reconnect and miss nothing; no acknowledged write is lost or doubled."""

import time
import uuid

import faults
import pytest
from scenario import assert_no_write_lost_or_duplicated
from stack import BASE_URL
from streams import SseClient, WebSocketClient, wait_for

NEEDS_REDIS = {"poll"}


@pytest.mark.failover
def test_failover_redis_crash(scenario, stack, ca_file, http):
    deadline = time.monotonic() + 150
    sse, ws = SseClient(ca_file, deadline), WebSocketClient(ca_file, deadline)
    sse.start()
    ws.start()
    wait_for(lambda: sse.connections and ws.connections, 10, "SSE and WebSocket clients")

    report = scenario("sigkill-redis", "SIGKILL of Redis's main process (restart policy brings it back)",
                      faults.crash_dependency("redis"))
    assert all(count >= 1 for count in report["restart_counts"].values()), report["restart_counts"]

    # Live clients: a message posted now reaches both (they reconnected and resumed).
    posted = http.post(f"{BASE_URL}/api/messages", json={"text": f"after redis {uuid.uuid4()}"}, timeout=5).json()
    try:
        wait_for(lambda: posted["id"] in sse.ids and posted["id"] in ws.ids, 20, "live clients to hear again")
    finally:
        sse.stop.set()
        ws.stop.set()

    others = {kind: n for kind, n in report["failed_by_kind"].items() if kind not in NEEDS_REDIS}
    assert others == {}, others
    for kind, statuses in report["failed_by_kind"].items():
        assert set(statuses) <= {"503"}, (kind, statuses)  # degraded with a reason, never a 500 or a reset
    assert "500" not in report["counts_by_status"]
    assert_no_write_lost_or_duplicated(report)
