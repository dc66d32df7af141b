"""Idempotency-Key on POST /api/messages, checked against the real app and database."""

import hashlib
import threading
import time
import uuid

from stack import BASE_URL


def post(http, text, key):
    return http.post(f"{BASE_URL}/api/messages", json={"text": text}, headers={"Idempotency-Key": key}, timeout=5)


def count_in_db(stack, text):
    return int(stack.sql(f"SELECT count(*) FROM board_message WHERE text = '{text}'"))


def wait_for_advisory_lock(stack, timeout=10):
    """Until psql in the holder thread has the lock (docker exec can be slow to start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if int(stack.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")):
            return
        time.sleep(0.1)
    raise AssertionError(f"psql did not take the advisory lock within {timeout} s")


def test_repeat_with_same_key_and_payload_replays_and_writes_nothing(stack, http):
    key, text = str(uuid.uuid4()), f"idem {uuid.uuid4()}"
    first = post(http, text, key)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    again = post(http, text, key)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert count_in_db(stack, text) == 1


def test_same_key_with_another_payload_is_422(http):
    key = str(uuid.uuid4())
    assert post(http, f"one {key}", key).status_code == 201
    reused = post(http, f"two {key}", key)
    assert reused.status_code == 422
    assert reused.json()["error"] == "idempotency_key_reused" and reused.json()["reason"]


def test_same_key_while_the_first_is_in_progress_is_409(stack, http):
    """Hold the key's advisory lock from psql, as a first request in progress would."""
    key, text = str(uuid.uuid4()), f"busy {uuid.uuid4()}"
    lock = int.from_bytes(hashlib.sha256(f"POST /api/messages {key}".encode()).digest()[:8], "big", signed=True)
    holder = threading.Thread(target=stack.exec, args=("db", ["psql", "-U", "app", "-d", "app", "-c",
                              f"SELECT pg_advisory_lock({lock}); SELECT pg_sleep(3);"]), daemon=True)
    holder.start()
    wait_for_advisory_lock(stack)
    busy = post(http, text, key)
    assert busy.status_code == 409, busy.text
    assert busy.headers["Retry-After"].isdigit()
    assert busy.json()["error"] == "request_in_progress" and busy.json()["reason"], busy.text
    holder.join(timeout=10)
    assert post(http, text, key).status_code == 201  # once the first is done, the key is free
    assert count_in_db(stack, text) == 1


def test_nginx_retries_keyed_writes_only(stack):
    """The config itself: non_idempotent retries only in the keyed-write locations, one per
    app that enforces Idempotency-Key: Django's, and Tomcat's and PHP's (the `polyglot`
    profile; test_polyglot.py proves they enforce it)."""
    code, conf = stack.exec("nginx", ["nginx", "-T"])
    assert code == 0
    blocks = conf.split("location ")
    with_retry = [b.split("{")[0].strip() for b in blocks if "non_idempotent" in b.split("}")[0]]
    assert with_retry == ["@app_write_idempotent", "@java_write_idempotent", "@php_write_idempotent"], with_retry
