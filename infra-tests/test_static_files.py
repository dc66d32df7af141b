"""Static files come from nginx itself (not Django), hashed, cached for a year, precompressed."""

import gzip
import re

from stack import BASE_URL


def static_urls(http):
    page = http.get(f"{BASE_URL}/", timeout=5).text
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', page)


def test_page_references_hashed_static_files(http):
    urls = static_urls(http)
    kinds = {url.rsplit(".", 1)[-1] for url in urls}
    assert {"css", "js", "svg"} <= kinds, urls
    for url in urls:
        assert re.search(r"\.[0-9a-f]{12}\.\w+$", url), f"not a hashed name: {url}"


def test_static_files_are_served_by_nginx_with_a_year_of_immutable_cache(http):
    for url in static_urls(http):
        response = http.get(f"{BASE_URL}{url}", timeout=5)
        assert response.status_code == 200, url
        assert "X-Served-By" not in response.headers, f"{url} reached Django"
        assert response.headers["Server"] == "nginx"
        cache = response.headers["Cache-Control"]
        assert "max-age=31536000" in cache and "immutable" in cache, cache


def test_static_files_are_precompressed(http):
    css = next(u for u in static_urls(http) if u.endswith(".css"))
    plain = http.get(f"{BASE_URL}{css}", headers={"Accept-Encoding": "identity"}, timeout=5)
    raw = http.get(f"{BASE_URL}{css}", headers={"Accept-Encoding": "gzip"}, stream=True, timeout=5)
    assert raw.headers.get("Content-Encoding") == "gzip"
    assert gzip.decompress(raw.raw.read()) == plain.content


def test_admin_static_files_come_from_nginx(http):
    page = http.get(f"{BASE_URL}/admin/login/", timeout=5)
    assert page.status_code == 200
    css = re.search(r'href="(/static/admin/css/[^"]+\.css)"', page.text).group(1)
    response = http.get(f"{BASE_URL}{css}", timeout=5)
    assert response.status_code == 200 and "X-Served-By" not in response.headers


def test_missing_static_file_is_nginx_404_not_django(http):
    response = http.get(f"{BASE_URL}/static/board/nope.0123456789ab.css", timeout=5)
    assert response.status_code == 404
    assert "X-Served-By" not in response.headers
