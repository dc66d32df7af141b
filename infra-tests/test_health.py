"""Liveness and readiness endpoints, and Docker's view of every service's health."""

from stack import BASE_URL


def test_healthz_and_readyz(http):
    assert http.get(f"{BASE_URL}/healthz", timeout=5).json() == {"status": "alive"}
    ready = http.get(f"{BASE_URL}/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_every_long_running_container_is_healthy_with_a_restart_policy(stack):
    for container in stack.containers():
        container.reload()
        assert container.attrs["State"]["Health"]["Status"] == "healthy", container.name
        assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped", container.name


def test_migrate_ran_once_and_succeeded(stack):
    jobs = stack.containers("migrate", all=True)
    assert len(jobs) == 1
    assert jobs[0].attrs["State"]["Status"] == "exited" and jobs[0].attrs["State"]["ExitCode"] == 0
