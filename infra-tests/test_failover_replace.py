"""A container removed and a new one started in its place: a new container, a new
IP, found by nginx through Docker's DNS."""

import faults
import pytest
from scenario import assert_no_user_visible_failure


@pytest.mark.failover
def test_failover_replace(scenario):
    report = scenario("replace-wsgi", "one gunicorn container stopped and removed, a new one started",
                      faults.replace(faults.first("wsgi")))
    assert len(report["fail_back"]) == 1, report["fail_back"]  # exactly one new container to fail back to
    assert_no_user_visible_failure(report)
