"""A hung backend: one gunicorn container frozen (docker pause) for 10 s. nginx's
700 ms read timeout for reads sends its requests elsewhere."""

import time

import pytest
from failover import assert_no_user_visible_failure, wait_app_healthy


def pause_for_ten_seconds(stack):
    victim = stack.containers("wsgi")[0]
    down_at = time.time()
    victim.pause()
    try:
        time.sleep(10)
    finally:
        victim.unpause()
    fault_end = time.time()
    wait_app_healthy(stack)
    host = victim.attrs["Config"]["Hostname"]
    return {"fault_end": fault_end, "returning": [{"host": host, "down_at": down_at}], "victim": victim.name}


@pytest.mark.failover
def test_failover_pause(scenario):
    report = scenario("pause-wsgi", "docker pause of one gunicorn container for 10 s, then unpause",
                      pause_for_ten_seconds)
    assert_no_user_visible_failure(report)
