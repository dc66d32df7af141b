"""`docker stop` (SIGTERM, graceful) of one gunicorn and one uvicorn container at
once, then started again: in-flight requests finish, new ones go elsewhere."""

import threading
import time

import pytest
from failover import assert_no_user_visible_failure, wait_app_healthy


def stop_and_start(stack):
    victims = [stack.containers("wsgi")[0], stack.containers("asgi")[0]]
    down_at = time.time()
    threads = [threading.Thread(target=v.stop, kwargs={"timeout": 25}) for v in victims]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=40)
    fault_end = time.time()
    for victim in victims:
        victim.reload()
        assert victim.status == "exited", victim.status
        assert victim.attrs["State"]["ExitCode"] == 0, f"{victim.name} did not exit cleanly on SIGTERM"
        victim.start()
    wait_app_healthy(stack)
    returning = [{"host": v.attrs["Config"]["Hostname"], "down_at": down_at} for v in victims]
    return {"fault_end": fault_end, "returning": returning,
            "victims": [v.name for v in victims]}


@pytest.mark.failover
def test_failover_sigterm(scenario):
    report = scenario("sigterm-wsgi-asgi", "docker stop (SIGTERM) of one gunicorn and one uvicorn container, "
                      "then docker start", stop_and_start)
    assert_no_user_visible_failure(report)
