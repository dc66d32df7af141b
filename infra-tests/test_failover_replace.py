"""A container removed and a new one started in its place: a new container, a new
IP, found by nginx through Docker's DNS."""

import time

import pytest
from failover import assert_no_user_visible_failure, replace_container, wait_app_healthy


def replace_one(stack):
    victim = stack.containers("wsgi")[0]
    old_ip = victim.attrs["NetworkSettings"]["Networks"]
    returning = replace_container(stack, victim)
    fault_end = time.time()
    wait_app_healthy(stack)
    assert len(returning) == 1, returning
    return {"fault_end": fault_end, "returning": returning, "victim": victim.name,
            "old_ips": [n["IPAddress"] for n in old_ip.values()]}


@pytest.mark.failover
def test_failover_replace(scenario):
    report = scenario("replace-wsgi", "one gunicorn container stopped and removed, a new one started",
                      replace_one)
    assert_no_user_visible_failure(report)
