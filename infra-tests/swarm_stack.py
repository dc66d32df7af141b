"""The stack on Docker Swarm (scripts/swarm): three node engines in containers on this host,
reached through their API sockets (never a TCP port), and the site on 127.0.0.1:9443.
SwarmStack offers what the scenario runner uses of stack.Stack (containers, app_hostnames,
service_of, sql, site, docker), gathered over every node that answers."""

import subprocess
import time

import docker
from stack import APP_SERVICES, ROOT, Site

NODES = ("djangostack-node1", "djangostack-node2", "djangostack-node3")
MANAGER = NODES[0]
STACK = "djangostack"
SOCK_DIR = "/run/djangostack-swarm"
SITE = Site("127.0.0.1", port=9443)
PUSH_REGISTRY = "127.0.0.1:9500"  # where this host pushes (scripts/swarm)
NODE_REGISTRY = "djangostack-registry:5000"  # where the nodes pull from


def swarm_script(*args, timeout=900, env=None):
    """scripts/swarm, its progress on the terminal (pytest -s) or in the captured output."""
    import os

    return subprocess.run([str(ROOT / "scripts" / "swarm"), *args], check=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def node_client(node, timeout=5):
    return docker.DockerClient(base_url=f"unix://{SOCK_DIR}/{node}/docker.sock", timeout=timeout)


class _AnyNode:
    """`.api.inspect_container(id)` on whichever node holds the container (the health watcher's use)."""

    def __init__(self, stack):
        self.api = self
        self.stack = stack

    def inspect_container(self, ident):
        for client in self.stack.clients():
            try:
                return client.api.inspect_container(ident)
            except Exception:  # noqa: BLE001, S112 - not on this node (or the node is gone)
                continue
        raise docker.errors.NotFound(ident)


class SwarmStack:
    project = STACK
    files = ("stack.yaml",)

    def __init__(self, site=SITE):
        self.site = site
        self.host = docker.from_env()
        self.manager = node_client(MANAGER, timeout=30)
        self._clients = {}
        self.docker = _AnyNode(self)

    def client(self, node):
        if node not in self._clients:
            self._clients[node] = node_client(node)
        return self._clients[node]

    def alive(self, node):
        try:
            return self.host.containers.get(node).status == "running"
        except docker.errors.NotFound:
            return False

    def clients(self):
        return [self.client(node) for node in NODES if self.alive(node)]

    # --- containers (tasks), as stack.Stack's ----------------------------------------------
    def containers(self, service=None, all=False):
        labels = [f"com.docker.stack.namespace={STACK}"]
        if service:
            labels.append(f"com.docker.swarm.service.name={STACK}_{service}")
        found = []
        for client in self.clients():
            try:
                found += client.containers.list(all=all, filters={"label": labels})
            except Exception:  # noqa: BLE001, S112 - a node that just died, or a container removed meanwhile
                continue
        return sorted(found, key=lambda c: c.name)

    def container(self, service):
        (only,) = self.containers(service)
        return only

    def service_of(self, container):
        return container.labels["com.docker.swarm.service.name"].removeprefix(f"{STACK}_")

    @staticmethod
    def hostname(container):
        return container.attrs["Config"]["Hostname"]

    def app_hostnames(self, service=None):
        services = [service] if service else APP_SERVICES
        return {self.hostname(c): c for s in services for c in self.containers(s)}

    def wait_app_healthy(self, timeout=120):
        for service in APP_SERVICES:
            self.wait_tasks(service, 2, timeout=timeout)

    def exec(self, service, command, user=None):
        result = self.container(service).exec_run(command, user=user or "")
        return result.exit_code, result.output.decode(errors="replace")

    def sql(self, query):
        code, out = self.exec("db", ["psql", "-U", "app", "-d", "app", "-tA", "-F", "\t", "-c", query])
        assert code == 0, out
        return out.strip()

    # --- the swarm's view ----------------------------------------------------------------------
    def cli(self, *args, timeout=120):
        """`docker ARGS` run by the manager's own CLI (it resolves image digests in the registry,
        which this host cannot name)."""
        result = subprocess.run(["docker", "exec", MANAGER, "docker", *args], text=True, capture_output=True,
                                timeout=timeout)
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
        return result.stdout

    def service(self, name):
        return self.manager.services.get(f"{STACK}_{name}")

    def node_names(self):
        """Node ID -> hostname (the node container's name)."""
        return {n.id: n.attrs["Description"]["Hostname"] for n in self.manager.nodes.list()}

    def running_tasks(self, name):
        """(task, node hostname) for the tasks of a service that Swarm reports running (healthy,
        for a service with a healthcheck) and that are meant to run."""
        nodes = self.node_names()
        tasks = self.manager.api.tasks(filters={"service": f"{STACK}_{name}", "desired-state": "running"})
        return [(t, nodes.get(t.get("NodeID"))) for t in tasks if t["Status"]["State"] == "running"]

    def task_nodes(self, name):
        """Hostname of each running task's container -> its node."""
        return {t["Status"]["ContainerStatus"]["ContainerID"][:12]: node for t, node in self.running_tasks(name)}

    def wait_tasks(self, name, count, timeout=120, avoid=None):
        """Until `count` tasks of the service run (and none on node `avoid`); the time it took."""
        start = time.monotonic()
        while time.monotonic() < start + timeout:
            running = self.running_tasks(name)
            if len(running) == count and not any(node == avoid for _, node in running):
                return time.monotonic() - start
            time.sleep(0.25)
        raise AssertionError(f"{name}: not {count} running tasks{f' off {avoid}' if avoid else ''} after {timeout} s: "
                             f"{[(t['Status']['State'], n) for t, n in self.running_tasks(name)]}")

    def wait_update_done(self, name, timeout=180):
        start = time.monotonic()
        while time.monotonic() < start + timeout:
            service = self.service(name)
            state = (service.attrs.get("UpdateStatus") or {}).get("State")
            if state in ("completed", None):
                return state
            assert state in ("updating",), f"{name}: update ended as {state}: {service.attrs['UpdateStatus']}"
            time.sleep(0.5)
        raise AssertionError(f"{name}: update not done after {timeout} s")

    def edge_certificate(self):
        code, pem = self.exec("nginx", ["cat", "/run/nginx/tls/fullchain.pem"])
        assert code == 0 and "BEGIN CERTIFICATE" in pem, pem
        return pem
