"""Only nginx publishes ports, on loopback by default; the backend network is internal and
only nginx and the ACME client are on the edge network."""


def published(container):
    ports = container.attrs["NetworkSettings"]["Ports"] or {}
    return {port: bindings for port, bindings in ports.items() if bindings}


def test_only_nginx_publishes_ports(stack):
    for container in stack.containers():
        if stack.service_of(container) == "nginx":
            continue
        assert not published(container), f"{container.name} publishes {published(container)}"


def test_nginx_publishes_80_and_443_on_loopback(stack):
    ports = published(stack.container("nginx"))
    assert set(ports) == {"8080/tcp", "8443/tcp"}
    host_ports = {b["HostPort"] for bindings in ports.values() for b in bindings}
    host_ips = {b["HostIp"] for bindings in ports.values() for b in bindings}
    assert host_ports == {"80", "443"}
    assert host_ips == {"127.0.0.1"}


# nginx bridges the two networks; acme talks to the CA (the internet), never to the backend.
EDGE_SERVICES = {"nginx": {"edge", "backend"}, "acme": {"edge"}}


def test_backend_network_is_internal_and_only_the_edge_services_are_on_edge(stack):
    for container in stack.containers():
        networks = container.attrs["NetworkSettings"]["Networks"]
        names = {name.split("_", 1)[1] for name in networks}
        expected = EDGE_SERVICES.get(stack.service_of(container), {"backend"})
        assert names == expected, (container.name, names)
    backend = stack.docker.networks.list(filters={"label": "com.docker.compose.network=backend"})
    backend = [n for n in backend if n.attrs["Labels"].get("com.docker.compose.project") == stack_project(stack)]
    assert backend and backend[0].attrs["Internal"] is True


def stack_project(stack):
    return stack.container("nginx").labels["com.docker.compose.project"]
