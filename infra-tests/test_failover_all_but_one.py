"""Every app container but one crashes at once (SIGKILL). The survivor is a
uvicorn container, because only uvicorn serves every route (the async routes
have no other server); the three others come back by their restart policy."""

import faults
import pytest
from scenario import assert_no_user_visible_failure


def all_but_one_asgi(stack):
    return [*stack.containers("wsgi"), stack.containers("asgi")[0]]


@pytest.mark.failover
def test_failover_all_but_one(scenario):
    report = scenario("all-but-one", "SIGKILL of both gunicorn containers and one uvicorn container at once",
                      faults.sigkill(all_but_one_asgi))
    assert len(report["victims"]) == 3, report["victims"]
    assert_no_user_visible_failure(report)
