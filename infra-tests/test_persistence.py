"""Data lives on the named volume db-data: `scripts/down` and up again keeps
every message (only `scripts/down --delete-data` removes the volumes)."""

import os
import subprocess
import uuid

import pytest
from stack import BASE_URL, PROJECT, ROOT, compose


@pytest.mark.scaling
def test_down_then_up_keeps_the_data(stack, http):
    text = f"persist {uuid.uuid4()}"
    created = http.post(f"{BASE_URL}/api/messages", json={"text": text}, timeout=5)
    assert created.status_code == 201
    before = {c.id for c in stack.containers()}

    subprocess.run([str(ROOT / "scripts" / "down")], check=True, timeout=120,
                   env={**os.environ, "COMPOSE_PROJECT_NAME": PROJECT})
    assert stack.containers() == []
    compose("up", "--detach", "--wait", "--wait-timeout", "300")

    assert not before & {c.id for c in stack.containers()}, "the containers were not recreated"
    listed = http.get(f"{BASE_URL}/api/messages", params={"after": created.json()["id"] - 1, "limit": 1},
                      timeout=5).json()["messages"]
    assert listed and listed[0]["text"] == text

