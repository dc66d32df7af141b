"""The stack under test, seen from the host: Compose for its lifecycle, the
Docker SDK for its containers, requests against loopback addresses only."""

import os
import pathlib
import subprocess
import time
from dataclasses import dataclass

import docker
import requests
from requests.adapters import HTTPAdapter

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROJECT = os.environ.get("COMPOSE_PROJECT_NAME", "djangostack-test")
BASE_URL = "https://127.0.0.1"
HTTP_URL = "http://127.0.0.1"
APP_SERVICES = ("wsgi", "asgi")


def compose(*args, check=True, capture=False, timeout=600, env=None, project=PROJECT, files=("compose.yaml",)):
    """`docker compose` on this repository's compose files (compose.yaml unless told),
    under the test project name (or COMPOSE_PROJECT_NAME's); `env` adds variables for
    the compose files to read."""
    cmd = ["docker", "compose", "--project-directory", str(ROOT), "-p", project]
    for name in files:
        cmd += ["-f", str(ROOT / name)]
    return subprocess.run([*cmd, *args], check=check, text=True, capture_output=capture, timeout=timeout,
                          env={**os.environ, **env} if env else None)


class _NamedHost(HTTPAdapter):
    """Connects to the URL's address, but sends `name` as TLS SNI and checks the
    certificate against it (urllib3's server_hostname), as a browser would for a
    site whose DNS name points at that address."""

    def __init__(self, name):
        self.name = name
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["server_hostname"] = self.name
        super().init_poolmanager(*args, **kwargs)


@dataclass(frozen=True)
class Site:
    """Where tests reach the edge: a loopback address, and the site's DNS name sent
    as SNI and Host (None: the address itself, as https://127.0.0.1)."""

    address: str = "127.0.0.1"
    name: str | None = None

    @property
    def base_url(self):
        return f"https://{self.address}"

    def session(self, ca_file):
        """A requests session that verifies the edge's certificate against `ca_file`."""
        session = requests.Session()
        session.verify = ca_file
        session.trust_env = False  # never a proxy or the environment's CA bundle: loopback only
        if self.name:
            session.mount(self.base_url, _NamedHost(self.name))
            session.headers["Host"] = self.name
        return session


SITE = Site()


class Stack:
    """One Compose project: its containers (Docker SDK), its compose command, and the
    Site where its edge answers."""

    def __init__(self, project=PROJECT, site=SITE, files=("compose.yaml",), env=None):
        self.docker = docker.from_env()
        self.project, self.site, self.files, self.env = project, site, files, env or {}

    def compose(self, *args, **kwargs):
        env = {**self.env, **kwargs.pop("env", {})}
        return compose(*args, project=self.project, files=self.files, env=env, **kwargs)

    def containers(self, service=None, all=False):
        labels = [f"com.docker.compose.project={self.project}"]
        if service:
            labels.append(f"com.docker.compose.service={service}")
        found = self.docker.containers.list(all=all, filters={"label": labels})
        return sorted(found, key=lambda c: c.name)

    def container(self, service):
        (only,) = self.containers(service)
        return only

    def service_of(self, container):
        return container.labels["com.docker.compose.service"]

    @staticmethod
    def hostname(container):
        """The container's hostname: what the app servers put in X-Served-By."""
        return container.attrs["Config"]["Hostname"]

    @staticmethod
    def restart_count(container):
        """How often the restart policy has restarted it (a crash counts; `docker restart` does not)."""
        container.reload()
        return container.attrs["RestartCount"]

    def app_hostnames(self, service=None):
        """Hostname (what X-Served-By carries) -> container, for the app servers."""
        services = [service] if service else APP_SERVICES
        return {self.hostname(c): c for s in services for c in self.containers(s)}

    def exec(self, service, command, user=None):
        result = self.container(service).exec_run(command, user=user or "")
        return result.exit_code, result.output.decode(errors="replace")

    def sql(self, query):
        """`query` run by psql inside the db container, as the app's role: the rows as
        text, one per line, columns separated by tabs."""
        code, out = self.exec("db", ["psql", "-U", "app", "-d", "app", "-tA", "-F", "\t", "-c", query])
        assert code == 0, out
        return out.strip()

    def wait_app_healthy(self, timeout=120):
        """Both containers of each Python app server healthy (the stack's normal state)."""
        for service in APP_SERVICES:
            self.wait_healthy(service, 2, timeout=timeout)

    def wait_healthy(self, service, count, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = self.containers(service)
            healthy = [c for c in running if c.attrs["State"].get("Health", {}).get("Status") == "healthy"]
            if len(running) == count and len(healthy) == count:
                return healthy
            time.sleep(0.5)
        raise AssertionError(f"{service}: not {count} healthy containers after {timeout} s")
