"""nginx itself crashes (SIGKILL of its master). It is the single entry point, so
this is an outage: measure it. Its restart policy must bring it back within 3 s."""


import pytest
from failover import assert_no_write_lost_or_duplicated, crash_single_service

OUTAGE_GOAL = 3.0


def kill_nginx(stack):
    fault_end, restarts = crash_single_service(stack, "nginx")
    return {"fault_end": fault_end, "returning": [], "restart_count": restarts}


@pytest.mark.failover
def test_failover_nginx_outage_is_short(scenario):
    report = scenario("sigkill-nginx", "SIGKILL of nginx's master process (the single entry point)", kill_nginx)
    assert report["restart_count"] >= 1
    assert report["requests"] >= 5000
    # Failures are expected here; they must stop within the goal, and none after recovery.
    assert report["outage_s"] is not None and report["outage_s"] <= OUTAGE_GOAL, report["outage_s"]
    assert all(r["start"] < report["recovered_at"] for r in report["failed_requests"])
    # Writes caught in the outage were retried by the client with their keys: none lost or doubled.
    assert_no_write_lost_or_duplicated(report)
