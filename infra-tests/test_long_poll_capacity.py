"""More long-poll clients wait than PostgreSQL has connections (max_connections=100),
and every one of them hears about a new message. A waiting poll holds no database
connection, and the polls that one event wakes share one read (app/board/live.py).
scripts/bench (row 5) measures how far this goes; this test keeps it from regressing."""

import asyncio
import ssl
import time
import uuid

import httpx
from stack import BASE_URL

CLIENTS = 150  # over PostgreSQL's 100 connections, across the two uvicorn containers
WAIT = 10      # each poll's timeout (s); the message is written after SETTLE
SETTLE = 3


def app_connections(stack):
    """Connections the app role holds in PostgreSQL right now."""
    return int(stack.sql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND pid <> pg_backend_pid()"))


async def wait_for_a_message(ca_file, stack):
    context = ssl.create_default_context(cafile=ca_file)
    limits = httpx.Limits(max_connections=CLIENTS + 4, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=BASE_URL, verify=context, limits=limits, timeout=WAIT + 10,
                                 trust_env=False) as client:
        latest = (await client.get("/api/messages", params={"limit": 1})).json()["messages"]
        after = latest[0]["id"] if latest else 0
        before = app_connections(stack)

        async def poll():
            try:
                response = await client.get("/api/messages/poll", params={"after": after, "timeout": WAIT})
                return response.status_code, response.json()
            except (httpx.HTTPError, ValueError) as error:
                return type(error).__name__, {}

        polls = [asyncio.create_task(poll()) for _ in range(CLIENTS)]
        await asyncio.sleep(SETTLE)
        held = app_connections(stack)  # blocking, but the polls wait on the server, not here
        written = await client.post("/api/messages", json={"text": f"capacity {uuid.uuid4()}"},
                                    headers={"Idempotency-Key": str(uuid.uuid4())})
        assert written.status_code == 201, written.text
        sent = time.monotonic()
        answers = await asyncio.gather(*polls)
        return before, held, written.json()["id"], answers, time.monotonic() - sent


def test_more_waiting_long_polls_than_database_connections_all_get_the_message(stack, ca_file):
    before, held, message_id, answers, elapsed = asyncio.run(wait_for_a_message(ca_file, stack))

    statuses = {}
    for status, _ in answers:
        statuses[status] = statuses.get(status, 0) + 1
    assert statuses == {200: CLIENTS}, statuses
    missed = [body for _, body in answers if message_id not in [m["id"] for m in body["messages"]]]
    assert not missed, f"{len(missed)} polls answered without the message, e.g. {missed[0]}"
    # Waiting costs no connection. (With the release removed, 150 polls held 36 more:
    # one per shared read. Without the sharing too, PostgreSQL refused them.)
    assert held - before < 15, f"{before} app connections in PostgreSQL, {held} while {CLIENTS} polls waited"
    assert elapsed < WAIT - SETTLE, "the polls ended by their timeout, not by the message"
