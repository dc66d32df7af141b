"""A crash (SIGKILL of the main process) of one gunicorn or one uvicorn container,
repaired by its restart policy: no user notices, and it takes traffic again."""

import faults
import pytest
from scenario import assert_no_user_visible_failure


@pytest.mark.failover
@pytest.mark.parametrize("service", ["wsgi", "asgi"])
def test_failover_sigkill(scenario, service):
    report = scenario(f"sigkill-{service}", f"SIGKILL of one {service} container's main process",
                      faults.sigkill(faults.first(service)))
    assert all(count >= 1 for count in report["restart_counts"].values()), report["restart_counts"]
    assert_no_user_visible_failure(report)
