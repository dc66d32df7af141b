"""stack.yaml (Docker Swarm) and compose.yaml (one host) describe the same stack: this fails
when they drift apart. Both files are read through `docker compose config`, so both are
normalised the same way (sizes in bytes, durations, defaults); `docker stack config` checks
that Swarm's own loader accepts stack.yaml. No stack is started."""

import json
import os
import re
import subprocess

import pytest
from stack import ROOT, compose
from test_base_images import verified_tags

pytestmark = pytest.mark.swarm

REGISTRY = "registry.test:5000"  # any value: stack.yaml's images are compose.yaml's, under it
# compose.yaml services with no Swarm counterpart, and why (README.md, "More than one machine").
NOT_IN_STACK = {
    "acme": "off unless ACME_EMAIL is set; on a cluster, put it beside nginx on the edge node",
}
# Mounts that only make sense on one host: bind mounts of this checkout (the node running a
# task has no such folder), and the volume of a service left out above.
HOST_ONLY_MOUNTS = {("nginx", "/etc/nginx/acme")}


def model(*files, env=None):
    args = [a for f in files for a in ("-f", str(ROOT / f))]
    out = subprocess.run(["docker", "compose", "--project-directory", str(ROOT), "-p", "djangostack", *args,
                          "config", "--format", "json"], check=True, capture_output=True, text=True,
                         env={**os.environ, "SWARM_REGISTRY": REGISTRY, **(env or {})})
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def both():
    return model("compose.yaml"), model("stack.yaml")


def size_bytes(text):
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", text.lower()).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[unit]


def tmpfs_of_compose(service):
    """path -> (size in bytes, uid) of compose.yaml's tmpfs mounts (and shm_size as /dev/shm)."""
    found = {}
    for entry in service.get("tmpfs", []):
        path, _, opts = entry.partition(":")
        options = dict(o.split("=", 1) for o in opts.split(",") if "=" in o)
        found[path] = (size_bytes(options["size"]), options.get("uid"))
    if service.get("shm_size"):
        found["/dev/shm"] = (int(service["shm_size"]), None)
    return found


def tmpfs_of_stack(service, volumes, shared):
    """The same for stack.yaml: tmpfs mounts, and named volumes of the local driver's tmpfs type
    that stand for one (not those compose.yaml shares too, `shared`)."""
    found = {}
    for mount in service.get("volumes", []):
        if mount["type"] == "tmpfs":
            found[mount["target"]] = (int(mount["tmpfs"]["size"]), None)
        elif mount["type"] == "volume" and mount["source"] not in shared \
                and volumes[mount["source"]].get("driver_opts", {}).get("type") == "tmpfs":
            options = dict(o.split("=", 1) for o in volumes[mount["source"]]["driver_opts"]["o"].split(","))
            found[mount["target"]] = (size_bytes(options["size"]), options.get("uid"))
    return found


def named_mounts(service, volumes):
    """(volume, path, read-only) of the service's mounts of these named volumes."""
    return {(m["source"], m["target"], bool(m.get("read_only"))) for m in service.get("volumes", [])
            if m["type"] == "volume" and m["source"] in volumes}


def test_swarm_accepts_the_stack_file():
    result = subprocess.run(["docker", "stack", "config", "-c", str(ROOT / "stack.yaml")], capture_output=True,
                            text=True, env={**os.environ, "SWARM_REGISTRY": REGISTRY})
    assert result.returncode == 0, result.stderr
    assert "Ignoring unsupported options" not in result.stderr, result.stderr


def test_the_same_services(both):
    local, swarm = both
    assert set(swarm["services"]) == set(local["services"]) - set(NOT_IN_STACK)


@pytest.mark.parametrize("field", ["command", "entrypoint", "user", "environment", "healthcheck", "stop_grace_period",
                                   "read_only", "cap_drop", "working_dir", "logging"])
def test_the_same_settings(both, field):
    local, swarm = both
    drift = {name: (local["services"][name].get(field), service.get(field))
             for name, service in swarm["services"].items() if local["services"][name].get(field) != service.get(field)}
    assert not drift, f"{field} differs between compose.yaml and stack.yaml (compose, stack): {drift}"


def test_the_same_images_through_the_registry(both):
    local, swarm = both
    for name, service in swarm["services"].items():
        assert service["image"] == f"{REGISTRY}/{local['services'][name]['image']}", name


def test_the_same_limits_replicas_secrets_and_networks(both):
    local, swarm = both
    for name, service in swarm["services"].items():
        here = local["services"][name]
        assert service["deploy"]["resources"] == here["deploy"]["resources"], name
        if service["deploy"].get("mode") != "replicated-job":
            assert service["deploy"].get("replicas", 1) == here["deploy"].get("replicas", 1), name
        assert [s["source"] for s in service.get("secrets", [])] == [s["source"] for s in here.get("secrets", [])], name
        assert set(service["networks"]) == set(here["networks"]), name
    for net in swarm["networks"]:
        assert swarm["networks"][net].get("internal") == local["networks"][net].get("internal"), net
        assert swarm["networks"][net]["driver"] == "overlay", net
    assert {k: v["file"] for k, v in swarm["secrets"].items()} == \
           {k: v["file"] for k, v in local["secrets"].items() if k in swarm["secrets"]}


def test_the_same_volumes_and_in_memory_mounts(both):
    local, swarm = both
    for name, service in swarm["services"].items():
        here = local["services"][name]
        expected = {m for m in named_mounts(here, local["volumes"]) if (name, m[1]) not in HOST_ONLY_MOUNTS}
        assert named_mounts(service, local["volumes"]) == expected, name
        assert tmpfs_of_stack(service, swarm["volumes"], local["volumes"]) == tmpfs_of_compose(here), name
        for volume in {m[0] for m in expected}:
            assert swarm["volumes"][volume].get("driver_opts") == local["volumes"][volume].get("driver_opts"), volume
    # The stack's own volumes are compose.yaml's tmpfs mounts with an owner (compared above).
    for volume in set(swarm["volumes"]) - set(local["volumes"]):
        assert swarm["volumes"][volume]["driver_opts"]["type"] == "tmpfs", volume


def test_swarm_specifics(both):
    """What the Swarm file adds: nginx follows each app task (DNS round robin, no virtual IP),
    rolling updates start the new task first and roll back on failure, host-mode ports, the
    database pinned to its labelled node, migrations as a job, restart policies."""
    _, swarm = both
    services = swarm["services"]
    for name in ("wsgi", "asgi"):
        deploy = services[name]["deploy"]
        assert deploy["endpoint_mode"] == "dnsrr", name
        assert deploy["update_config"]["order"] == "start-first", name
        assert deploy["update_config"]["failure_action"] == "rollback", name
    for name, service in services.items():
        assert service["deploy"].get("restart_policy", {}).get("condition") in ("any", "on-failure"), name
        assert "update_config" in service["deploy"] or service["deploy"].get("mode") == "replicated-job", name
    assert all(p["mode"] == "host" for p in services["nginx"]["ports"])
    # A dead node's tasks are found by TCP keepalive (swarm/nginx/dead-peers.conf).
    assert services["nginx"]["sysctls"]["net.ipv4.tcp_keepalive_time"] in (1, "1")
    # ... and a request it wrote to one, never acknowledged, by fewer retransmissions.
    assert services["nginx"]["sysctls"]["net.ipv4.tcp_retries2"] in (3, "3")
    assert any(c["target"] == "/etc/nginx/conf.d/dead-peers.conf" for c in services["nginx"]["configs"])
    assert "node.labels.djangostack.db == true" in services["db"]["deploy"]["placement"]["constraints"]
    assert services["migrate"]["deploy"]["mode"] == "replicated-job"


def test_the_registry_image_is_a_checked_official_tag():
    image = re.search(r"^REGISTRY_IMAGE=(\S+)$", (ROOT / "scripts" / "swarm").read_text(), re.M).group(1)
    assert image in verified_tags(), image


def test_compose_sees_every_stack_variable():
    """Variables stack.yaml reads are compose.yaml's (documented in .env.example), but for
    the two only a Swarm deploy needs."""
    names = set(re.findall(r"\$\{([A-Z_]+)", (ROOT / "stack.yaml").read_text()))
    in_compose = set(re.findall(r"\$\{([A-Z_]+)", (ROOT / "compose.yaml").read_text()))
    assert names - in_compose == {"SWARM_REGISTRY"}, names - in_compose
    assert compose("config", "--quiet", check=False).returncode == 0
