"""A rolling restart: every app container restarted (graceful stop, start), one at
a time, each back to healthy before the next."""

import faults
import pytest
from scenario import assert_no_user_visible_failure
from stack import APP_SERVICES


@pytest.mark.failover
def test_failover_rolling_restart(scenario):
    report = scenario("rolling-restart", "every app container restarted one at a time",
                      faults.rolling_restart(faults.every(*APP_SERVICES)))
    assert len(report["fail_back"]) == 4, report["fail_back"]
    assert_no_user_visible_failure(report)
