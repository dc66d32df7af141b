"""Security headers on every kind of response, no version anywhere, and pages
that satisfy their own Content-Security-Policy (no inline script or style)."""

import re

from stack import BASE_URL, HTTP_URL


def responses(http):
    page = http.get(f"{BASE_URL}/", timeout=5)
    css = re.search(r'href="(/static/[^"]+\.css)"', page.text).group(1)
    return {
        "page": page,
        "api": http.get(f"{BASE_URL}/api/whoami", timeout=5),
        "static": http.get(f"{BASE_URL}{css}", timeout=5),
        "app 404": http.get(f"{BASE_URL}/no-such-page", timeout=5),
        "nginx 404": http.get(f"{BASE_URL}/static/no-such-file.css", timeout=5),
        "405": http.post(f"{BASE_URL}/api/whoami", timeout=5),
    }


def test_security_headers_on_every_response(http):
    for name, response in responses(http).items():
        headers = response.headers
        hsts = re.search(r"max-age=(\d+)", headers.get("Strict-Transport-Security", ""))
        assert hsts and int(hsts.group(1)) >= 31536000, (name, headers)
        assert headers.get("X-Content-Type-Options") == "nosniff", name
        assert headers.get("Referrer-Policy"), name
        assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), name
        assert headers.get("Server") == "nginx", (name, headers.get("Server"))  # server_tokens off
        assert "Traceback" not in response.text and "nginx/" not in response.text, name


def test_error_pages_are_the_projects_own(http):
    """nginx's own 4xx answers are short JSON; Django's error pages are the app's templates."""
    missing_static = http.get(f"{BASE_URL}/static/no-such-file.css", timeout=5)
    assert missing_static.status_code == 404
    # With the request id (issue 14), the same one as in the response header.
    assert missing_static.json() == {"error": "not_found", "reason": "nothing here",
                                     "request_id": missing_static.headers["X-Request-ID"]}
    too_big = http.post(f"{BASE_URL}/api/messages", data=b"x" * (2 * 1024 * 1024), timeout=10,
                        headers={"Content-Type": "application/json"})
    assert too_big.status_code == 413 and too_big.json()["error"] == "payload_too_large"
    app_404 = http.get(f"{BASE_URL}/no-such-page", timeout=5)
    assert app_404.status_code == 404 and "Back to the message board" in app_404.text


def test_redirect_hides_the_version_too(http):
    response = http.get(f"{HTTP_URL}/", allow_redirects=False, timeout=5)
    assert response.status_code == 308
    assert response.headers["Server"] == "nginx" and "nginx/" not in response.text


def test_pages_need_no_inline_script_or_style(http):
    page = http.get(f"{BASE_URL}/", timeout=5).text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "inline <script> breaks the CSP"
    assert not re.search(r"\sstyle=", page) and "<style" not in page, "inline style breaks the CSP"
    assert not re.search(r"\son[a-z]+=", page), "inline event handlers break the CSP"
