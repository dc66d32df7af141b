"""nginx's configuration is valid inside the running container, and its version
can resolve upstreams at run time."""

import re

import testinfra


def test_nginx_config_test_passes(stack):
    host = testinfra.get_host(f"docker://{stack.container('nginx').id}")
    result = host.run("nginx -t")
    assert result.rc == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


def test_nginx_is_new_enough_for_upstream_resolve(stack):
    host = testinfra.get_host(f"docker://{stack.container('nginx').id}")
    version = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", host.run("nginx -v").stderr)
    assert version, "no version from nginx -v"
    assert tuple(map(int, version.groups())) >= (1, 27, 3)
    assert "--with-http_v2_module" in host.run("nginx -V").stderr
