"""Certificates from a real ACME CA, with a real domain name: the configuration a user
deploys. A second stack (project djangostack-acme, on 127.0.0.2) serves only
board.example.test, and its acme service gets that name's certificate from Pebble
(Let's Encrypt's ACME test server) over HTTP-01, answered by the stack's own nginx.
Pebble issues 90-second certificates, so a renewal (at two thirds: 60 s) happens
within the test. The tests run in this file's order, on one stack."""

import json
import socket
import ssl
import time

import faults
import pytest
import requests
from cryptography import x509
from scenario import assert_no_user_visible_failure, run_scenario
from stack import Site, Stack
from traffic import Traffic

NAME = "board.example.test"
SITE = Site("127.0.0.2", NAME)
LIFETIME = 90  # seconds, Pebble's certificateValidityPeriod here
ENV = {
    "EDGE_BIND": SITE.address,
    "DJANGO_ALLOWED_HOSTS": NAME,  # no localhost, no 127.0.0.1: a real domain only
    "ACME_EMAIL": f"ops@{NAME}",
    "ACME_DIRECTORY": "https://pebble:14000/dir",
    "ACME_CHECK_INTERVAL": "2",
    "ACME_RETRY_INTERVAL": "3",
    "EDGE_RELOAD_INTERVAL": "1",
    "PEBBLE_CERT_VALIDITY": str(LIFETIME),
}

pytestmark = pytest.mark.acme


def served_certificate(site=SITE):
    """The certificate nginx serves for the site's name (no verification: any stage)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((site.address, 443), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=site.name) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def issuer(cert):
    return cert.issuer.rfc4514_string()


def wait_for(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout} s")


def acme_log(stack, since=None):
    """The acme service's log, from `since` (time.time()) or from its start."""
    kwargs = {"since": int(since) - 1} if since else {}
    return stack.container("acme").logs(**kwargs).decode(errors="replace")


@pytest.fixture(scope="module")
def acme_stack(progress):
    stack = Stack(project="djangostack-acme", site=SITE, files=("compose.yaml", "infra-tests/compose.acme-test.yaml"),
                  env=ENV)
    stack.compose("down", "--volumes", "--remove-orphans")
    started = time.monotonic()
    try:
        stack.compose("up", "--detach", "--wait", "--wait-timeout", "300")
        first = wait_for("a certificate from Pebble", lambda: "Pebble" in issuer(served_certificate()), 120)
        stack.issued_after = time.monotonic() - started
        progress(f"[acme] scripts/up-equivalent to a Pebble certificate for {NAME}: {stack.issued_after:.1f} s")
        assert first
        yield stack
    except Exception:
        stack.compose("ps", "--all", check=False)
        stack.compose("logs", "--tail", "40", check=False)
        raise
    finally:
        stack.compose("down", "--volumes", "--remove-orphans", check=False)


@pytest.fixture(scope="module")
def pebble_root(acme_stack, tmp_path_factory):
    """The root Pebble issues from (new at each Pebble start), fetched from its
    management API, whose own TLS certificate is checked against its API CA."""
    folder = tmp_path_factory.mktemp("pebble")
    api_ca = folder / "api-ca.pem"
    code, pem = acme_stack.exec("pebble", ["cat", "/var/lib/pebble-ca/pebble-api-ca.pem"])
    assert code == 0, pem
    api_ca.write_text(pem)
    with Site(SITE.address, "pebble").session(str(api_ca)) as session:
        root = session.get(f"https://{SITE.address}:15000/roots/0", timeout=5)
        root.raise_for_status()
    path = folder / "root.pem"
    path.write_text(root.text)
    return str(path)


def test_a_domain_only_stack_is_healthy_and_serves_that_name(acme_stack, pebble_root):
    for container in acme_stack.containers():
        container.reload()
        health = container.attrs["State"].get("Health", {}).get("Status")
        assert health == "healthy", f"{container.name}: {health}"
    env = dict(e.split("=", 1) for e in acme_stack.container("nginx").attrs["Config"]["Env"])
    assert env["SITE_HOSTS"] == NAME
    with SITE.session(pebble_root) as session:
        whoami = session.get(f"{SITE.base_url}/api/whoami", timeout=5)
        assert whoami.status_code == 200, whoami.text
        assert session.get(f"{SITE.base_url}/readyz", timeout=5).json()["status"] == "ready"
    # Any other name is not this site: nginx closes the connection without an answer.
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{SITE.address}/", headers={"Host": "localhost"}, timeout=5)


def test_the_certificate_comes_from_the_acme_ca_and_verifies(acme_stack, pebble_root):
    cert = served_certificate()
    assert "Pebble" in issuer(cert)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == [NAME]
    lifetime = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()
    assert abs(lifetime - LIFETIME) <= 2, lifetime
    # Verified for real, against Pebble's root and the name (not verify=False).
    with SITE.session(pebble_root) as session:
        assert session.get(f"{SITE.base_url}/", timeout=5).status_code == 200
    log = acme_log(acme_stack)
    assert "certificate installed for board.example.test" in log, log
    # The account key and certificate live on the volume, readable by nginx's group only.
    code, listing = acme_stack.exec("acme", ["sh", "-c", "stat -c '%a %u:%g' /var/lib/acme/live/privkey.pem"])
    assert code == 0 and listing.split() == ["640", "10102:101"], listing


def wait_for_renewal():
    """The fault: none; the event is the renewal. Returns when nginx serves a new certificate."""
    before = served_certificate().serial_number
    renewed = wait_for("a renewed certificate", lambda: served_certificate().serial_number != before, LIFETIME)
    return {"renewed": bool(renewed)}


def test_renewal_reloads_nginx_with_zero_failed_requests(acme_stack, pebble_root, progress):
    with Traffic(pebble_root, min_requests=300, max_seconds=20, label="warm-up", site=SITE) as warm:
        warm.stop()
    report = run_scenario("acme-renewal", "certificate renewed by ACME, nginx reloaded, under traffic",
                          acme_stack, pebble_root, faults.command(wait_for_renewal), progress)
    assert report["renewed"]
    assert_no_user_visible_failure(report)
    nginx_log = acme_stack.container("nginx").logs(since=int(report["traffic_start"])).decode(errors="replace")
    assert "nginx reloaded gracefully" in nginx_log


def test_an_unreachable_ca_keeps_the_current_certificate(acme_stack):
    """The CA drops off the network at renewal time: the old certificate keeps serving,
    the reason is logged, the stack stays healthy; once the CA is back, it renews."""
    pebble = acme_stack.container("pebble")
    network = f"{acme_stack.project}_edge"
    serving = served_certificate().serial_number
    since = time.time()
    acme_stack.docker.networks.get(network).disconnect(pebble)
    try:
        log = wait_for("a failed renewal in the acme log", lambda: "FAILED" in (text := acme_log(acme_stack, since))
                       and text, LIFETIME)
        assert "current one keeps serving" in log and "pebble" in log, log
        assert served_certificate().serial_number == serving
        for container in acme_stack.containers():
            container.reload()
            assert container.attrs["State"]["Health"]["Status"] == "healthy", container.name
    finally:
        acme_stack.docker.networks.get(network).connect(pebble, aliases=["pebble"])
    wait_for("a renewal once the CA is back", lambda: served_certificate().serial_number != serving, 60)


def test_a_failed_challenge_keeps_the_current_certificate(acme_stack):
    """A name that does not point at this host: its HTTP-01 challenge fails, the
    current certificate keeps serving and the reason is logged."""
    serving = served_certificate().serial_number
    since = time.time()
    broken = "elsewhere.example.test"
    acme_stack.compose("up", "--detach", "--wait", "acme", env={"ACME_DOMAINS": f"{NAME},{broken}"})
    try:
        log = wait_for("a failed challenge in the acme log", lambda: "FAILED" in (text := acme_log(acme_stack, since))
                       and text, 60)
        assert broken in log, log
        assert served_certificate().serial_number == serving
        acme_stack.container("acme").reload()
        assert acme_stack.container("acme").attrs["State"]["Health"]["Status"] == "healthy"
        with requests.Session() as session:
            session.trust_env = False
            # The site itself is untouched.
            assert session.get(f"http://{SITE.address}/", headers={"Host": NAME}, allow_redirects=False,
                               timeout=5).status_code == 308
    finally:
        acme_stack.compose("up", "--detach", "--wait", "acme")
    report = {"issued_after_s": round(acme_stack.issued_after, 1)}
    print(json.dumps(report))
