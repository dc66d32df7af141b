"""The stack under test, seen from the host: Compose for its lifecycle, the
Docker SDK for its containers, requests against https://127.0.0.1 only."""

import os
import pathlib
import subprocess
import time

import docker

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROJECT = os.environ.get("COMPOSE_PROJECT_NAME", "djangostack-test")
BASE_URL = "https://127.0.0.1"
HTTP_URL = "http://127.0.0.1"
APP_SERVICES = ("wsgi", "asgi")


def compose(*args, check=True, capture=False, timeout=600, env=None):
    """`docker compose` on this repository's compose.yaml, under the test project name
    (or COMPOSE_PROJECT_NAME's); `env` adds variables for compose.yaml to read."""
    cmd = ["docker", "compose", "--project-directory", str(ROOT), "-f", str(ROOT / "compose.yaml"),
           "-p", PROJECT, *args]
    return subprocess.run(cmd, check=check, text=True, capture_output=capture, timeout=timeout,
                          env={**os.environ, **env} if env else None)


class Stack:
    def __init__(self):
        self.docker = docker.from_env()

    def containers(self, service=None, all=False):
        labels = [f"com.docker.compose.project={PROJECT}"]
        if service:
            labels.append(f"com.docker.compose.service={service}")
        found = self.docker.containers.list(all=all, filters={"label": labels})
        return sorted(found, key=lambda c: c.name)

    def container(self, service):
        (only,) = self.containers(service)
        return only

    def service_of(self, container):
        return container.labels["com.docker.compose.service"]

    def app_hostnames(self, service=None):
        """Hostname (what X-Served-By carries) -> container, for the app servers."""
        services = [service] if service else APP_SERVICES
        return {c.attrs["Config"]["Hostname"]: c for s in services for c in self.containers(s)}

    def exec(self, service, command, user=None):
        result = self.container(service).exec_run(command, user=user or "")
        return result.exit_code, result.output.decode(errors="replace")

    def sql(self, query):
        """`query` run by psql inside the db container, as the app's role: the rows as
        text, one per line, columns separated by tabs."""
        code, out = self.exec("db", ["psql", "-U", "app", "-d", "app", "-tA", "-F", "\t", "-c", query])
        assert code == 0, out
        return out.strip()

    def wait_healthy(self, service, count, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = self.containers(service)
            healthy = [c for c in running if c.attrs["State"].get("Health", {}).get("Status") == "healthy"]
            if len(running) == count and len(healthy) == count:
                return healthy
            time.sleep(0.5)
        raise AssertionError(f"{service}: not {count} healthy containers after {timeout} s")
