"""HTTP redirects to HTTPS; HTTPS (verified against the edge's certificate) and HTTP/2 work."""

import socket
import ssl

from stack import BASE_URL, HTTP_URL


def test_http_redirects_to_https_keeping_path_and_query(http):
    response = http.get(f"{HTTP_URL}/api/messages?limit=3", allow_redirects=False, timeout=5)
    assert response.status_code == 308
    assert response.headers["Location"] == "https://127.0.0.1/api/messages?limit=3"


def test_https_serves_the_home_page(http):
    response = http.get(f"{BASE_URL}/", timeout=5)
    assert response.status_code == 200
    assert "Message board" in response.text


def test_http2_is_negotiated(http2):
    response = http2.get("/api/whoami")
    assert response.status_code == 200
    assert response.http_version == "HTTP/2"


def test_tls_is_at_least_1_2(ca_file):
    context = ssl.create_default_context(cafile=ca_file)
    with socket.create_connection(("127.0.0.1", 443), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            assert tls.selected_alpn_protocol() in (None, "h2", "http/1.1")


def test_django_sees_https_and_the_client_address(stack, http):
    body = http.get(f"{BASE_URL}/api/whoami", timeout=5).json()
    assert body["scheme"] == "https"
    nginx = stack.container("nginx")
    nginx_ips = {net["IPAddress"] for net in nginx.attrs["NetworkSettings"]["Networks"].values()}
    # The app sees the address nginx saw (the host side of the published port), not nginx's own.
    assert body["client_ip"] and body["client_ip"] not in nginx_ips
