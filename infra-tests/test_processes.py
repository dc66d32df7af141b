"""The expected server processes run in each container."""


def commands(container):
    return [row[-1] for row in container.top(ps_args="-o pid,args")["Processes"]]


def test_nginx_master_and_workers(stack):
    procs = commands(stack.container("nginx"))
    assert sum("nginx: master process" in p for p in procs) == 1, procs
    assert sum("nginx: worker process" in p for p in procs) >= 1, procs


def test_gunicorn_master_and_workers(stack):
    containers = stack.containers("wsgi")
    assert len(containers) == 2
    for container in containers:
        procs = [p for p in commands(container) if "gunicorn" in p]
        # one master plus at least two workers (gunicorn.conf.py: workers=2)
        assert len(procs) >= 3, (container.name, procs)


def test_uvicorn_runs(stack):
    containers = stack.containers("asgi")
    assert len(containers) == 2
    for container in containers:
        procs = commands(container)
        assert any("uvicorn config.asgi:application" in p for p in procs), (container.name, procs)


def test_pid1_is_the_server_itself(stack):
    """Exec form all the way down: docker stop's SIGTERM reaches the server, not a shell."""
    expected = {"nginx": "nginx", "wsgi": "gunicorn", "asgi": "uvicorn", "db": "postgres", "redis": "redis-server"}
    for service, name in expected.items():
        for container in stack.containers(service):
            code, comm = pid1_cmdline(container)
            assert code == 0 and name in comm, (container.name, comm)


def pid1_cmdline(container):
    result = container.exec_run(["cat", "/proc/1/cmdline"])
    return result.exit_code, result.output.decode(errors="replace").replace("\0", " ")
