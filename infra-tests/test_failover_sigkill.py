"""A crash (SIGKILL of the main process) of one gunicorn or one uvicorn container,
repaired by its restart policy: no user notices, and it takes traffic again."""

import time

import pytest
from failover import assert_no_user_visible_failure, crash, restart_count, wait_app_healthy, wait_restarted


def kill_one(service):
    def fault(stack):
        victim = stack.containers(service)[0]
        host = victim.attrs["Config"]["Hostname"]
        count = restart_count(victim)
        down_at = time.time()
        crash(victim)
        fault_end = time.time()
        wait_restarted(stack, victim, count)
        wait_app_healthy(stack)
        return {"fault_end": fault_end, "returning": [{"host": host, "down_at": down_at}], "victim": victim.name,
                "restart_count": restart_count(victim)}
    return fault


@pytest.mark.failover
@pytest.mark.parametrize("service", ["wsgi", "asgi"])
def test_failover_sigkill(scenario, service):
    report = scenario(f"sigkill-{service}", f"SIGKILL of one {service} container's main process", kill_one(service))
    assert report["restart_count"] >= 1
    assert_no_user_visible_failure(report)
