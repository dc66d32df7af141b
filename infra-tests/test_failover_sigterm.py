"""`docker stop` (SIGTERM, graceful) of one gunicorn and one uvicorn container at
once, then started again: in-flight requests finish, new ones go elsewhere."""

import faults
import pytest
from scenario import assert_no_user_visible_failure


@pytest.mark.failover
def test_failover_sigterm(scenario):
    report = scenario("sigterm-wsgi-asgi", "docker stop (SIGTERM) of one gunicorn and one uvicorn container, "
                      "then docker start", faults.stop_start(faults.one_of_each("wsgi", "asgi")))
    assert set(report["exit_codes"].values()) == {0}, f"not a clean exit on SIGTERM: {report['exit_codes']}"
    assert_no_user_visible_failure(report)
