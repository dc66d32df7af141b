"""A hung backend: one gunicorn container frozen (docker pause) for 10 s. nginx's
700 ms read timeout for reads sends its requests elsewhere."""

import faults
import pytest
from scenario import assert_no_user_visible_failure


@pytest.mark.failover
def test_failover_pause(scenario):
    report = scenario("pause-wsgi", "docker pause of one gunicorn container for 10 s, then unpause",
                      faults.pause(faults.first("wsgi"), seconds=10))
    assert_no_user_visible_failure(report)
