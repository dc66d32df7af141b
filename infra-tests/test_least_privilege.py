"""Least privilege, read from `docker inspect` and checked inside the containers:
read-only root filesystems, no capabilities, no privilege gain, resource limits (bounded
logs included), no Docker socket anywhere. The per-container checks are functions, so containers
started later (test_polyglot.py's profile) get exactly the same ones."""

import testinfra


def assert_locked_down(container):
    host = container.attrs["HostConfig"]
    name = container.name
    assert host["ReadonlyRootfs"] is True, f"{name}: root filesystem is writable"
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"], f"{name}: {host['CapDrop']} / {host['CapAdd']}"
    assert "no-new-privileges:true" in (host["SecurityOpt"] or []), f"{name}: {host['SecurityOpt']}"
    assert host["Memory"] > 0 and host["NanoCpus"] > 0 and (host["PidsLimit"] or 0) > 0, \
        f"{name}: memory {host['Memory']}, cpus {host['NanoCpus']}, pids {host['PidsLimit']}"
    assert not host["Privileged"], name
    # Its logs cannot fill the disk: Docker's json-file default never rotates.
    log = host["LogConfig"]
    assert log["Type"] == "local" or log["Config"].get("max-size"), f"{name}: unbounded logs {log}"


def assert_no_docker_socket(container):
    for mount in container.attrs["Mounts"]:
        assert "docker.sock" not in mount.get("Source", ""), f"{container.name} mounts {mount['Source']}"


def assert_root_filesystem_read_only(container):
    host = testinfra.get_host(f"docker://{container.id}")
    result = host.run("touch /usr/local/owned-by-an-attacker")
    assert result.rc != 0 and "Read-only file system" in result.stderr, (container.name, result.stderr)


def assert_no_effective_capabilities(container):
    code, status = container.exec_run(["cat", "/proc/1/status"])
    fields = dict(line.split(":\t", 1) for line in status.decode().splitlines() if ":\t" in line)
    assert int(fields["CapEff"], 16) == 0, f"{container.name}: CapEff {fields['CapEff']}"
    assert fields["NoNewPrivs"].strip() == "1", container.name


def test_every_container_is_locked_down(stack):
    for container in stack.containers():
        assert_locked_down(container)


def test_nothing_mounts_the_docker_socket(stack):
    for container in stack.containers(all=True):
        assert_no_docker_socket(container)


def test_root_filesystem_really_is_read_only(stack):
    for container in stack.containers():
        assert_root_filesystem_read_only(container)


def test_processes_have_no_effective_capabilities(stack):
    for container in stack.containers():
        assert_no_effective_capabilities(container)
