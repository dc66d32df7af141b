"""Every app container but one crashes at once (SIGKILL). The survivor is a
uvicorn container, because only uvicorn serves every route (the async routes
have no other server); the three others come back by their restart policy."""

import time

import pytest
from failover import assert_no_user_visible_failure, crash, restart_count, wait_app_healthy, wait_restarted


def kill_all_but_one(stack):
    victims = [*stack.containers("wsgi"), stack.containers("asgi")[0]]
    counts = {v.name: restart_count(v) for v in victims}
    down_at = time.time()
    for victim in victims:
        crash(victim)
    fault_end = time.time()
    for victim in victims:
        wait_restarted(stack, victim, counts[victim.name])
    wait_app_healthy(stack)
    returning = [{"host": v.attrs["Config"]["Hostname"], "down_at": down_at} for v in victims]
    return {"fault_end": fault_end, "returning": returning,
            "victims": [v.name for v in victims], "survivor": stack.containers("asgi")[1].name}


@pytest.mark.failover
def test_failover_all_but_one(scenario):
    report = scenario("all-but-one", "SIGKILL of both gunicorn containers and one uvicorn container at once",
                      kill_all_but_one)
    assert_no_user_visible_failure(report)
