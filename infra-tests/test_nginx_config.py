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


def test_gixy_finds_nothing(stack):
    """gixy (the nginx configuration analyser) on the configuration nginx really
    loaded (`nginx -T`, every include expanded)."""
    import subprocess
    import sys
    from pathlib import Path

    loaded = stack.container("nginx").exec_run(["nginx", "-T"], stdout=True, stderr=False)
    dump = loaded.output.decode()
    assert loaded.exit_code == 0 and "server {" in dump
    gixy = Path(sys.executable).parent / "gixy"
    result = subprocess.run([str(gixy), "-"], input=dump, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No issues found" in result.stdout, result.stdout


def test_site_nginx_loads_nothing_from_conf_d(stack):
    """conf.d/ is an extension point, empty in the image: the bench's plain-HTTP server
    and CGI route (bench/nginx/) exist only in the bench-edge container."""
    host = testinfra.get_host(f"docker://{stack.container('nginx').id}")
    assert host.file("/etc/nginx/conf.d").is_directory
    assert host.file("/etc/nginx/conf.d").listdir() == []
    dump = host.run("nginx -T").stdout
    assert "# configuration file /etc/nginx/conf.d/" not in dump
    # The site's one FastCGI route is PHP-FPM's (/php/, polyglot-routes.conf); the bench's CGI is not there.
    assert "fastcgi_pass bench_cgi" not in dump and "location /cgi/" not in dump and "listen 8081" not in dump
