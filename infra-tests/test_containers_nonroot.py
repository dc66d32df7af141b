"""Every container runs as a non-root user: by configuration and in fact. The
per-container checks are functions, reused for the `polyglot` profile's containers."""

import testinfra


def assert_configured_non_root(container):
    user = container.attrs["Config"]["User"]
    assert user and user.split(":")[0] not in ("root", "0"), f"{container.name} runs as {user!r}"


def assert_no_root_process(container):
    top = container.top(ps_args="-o pid,uid,args")
    uids = {row[1] for row in top["Processes"]}
    assert "0" not in uids, f"{container.name} has root processes: {top['Processes']}"


def assert_shell_not_root(container):
    host = testinfra.get_host(f"docker://{container.id}")
    assert host.user().uid != 0, container.name


def test_every_container_is_configured_non_root(stack):
    running = stack.containers()
    assert len(running) >= 7, [c.name for c in running]  # nginx, 2 wsgi, 2 asgi, db, redis
    for container in running:
        assert_configured_non_root(container)


def test_no_process_runs_as_root(stack):
    for container in stack.containers():
        assert_no_root_process(container)


def test_shell_inside_is_not_root(stack):
    for container in stack.containers():
        assert_shell_not_root(container)
