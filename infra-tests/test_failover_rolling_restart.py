"""A rolling restart: every app container restarted (graceful stop, start), one at
a time, each back to healthy before the next."""

import time

import pytest
from failover import assert_no_user_visible_failure, wait_app_healthy


def rolling_restart(stack):
    returning = []
    for container in [*stack.containers("wsgi"), *stack.containers("asgi")]:
        down_at = time.time()
        container.restart(timeout=25)
        wait_app_healthy(stack)
        returning.append({"host": container.attrs["Config"]["Hostname"], "down_at": down_at})
    return {"fault_end": time.time(), "returning": returning}


@pytest.mark.failover
def test_failover_rolling_restart(scenario):
    report = scenario("rolling-restart", "every app container restarted one at a time", rolling_restart)
    assert_no_user_visible_failure(report)
