"""Messages go through nginx and the app into PostgreSQL and back."""

import re
import uuid

from stack import BASE_URL


def test_api_post_then_get_round_trips_through_the_database(stack, http):
    text = f"api {uuid.uuid4()}"
    created = http.post(f"{BASE_URL}/api/messages", json={"text": text}, timeout=5)
    assert created.status_code == 201, created.text
    message = created.json()
    assert message["text"] == text and message["id"] > 0

    listed = http.get(f"{BASE_URL}/api/messages", timeout=5).json()["messages"]
    assert any(m["id"] == message["id"] and m["text"] == text for m in listed)

    # And it is really in PostgreSQL, read with psql inside the db container.
    assert stack.sql(f"SELECT text FROM board_message WHERE id = {int(message['id'])}") == text


def test_html_form_posts_with_csrf_and_the_page_shows_it(http):
    page = http.get(f"{BASE_URL}/", timeout=5)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    text = f"form {uuid.uuid4()}"
    response = http.post(f"{BASE_URL}/messages", data={"text": text, "csrfmiddlewaretoken": token},
                         headers={"Referer": f"{BASE_URL}/"}, allow_redirects=False, timeout=5)
    assert response.status_code == 303, response.text[:300]
    assert text in http.get(f"{BASE_URL}/", timeout=5).text


def test_html_form_rejects_an_empty_message_and_shows_why(http):
    page = http.get(f"{BASE_URL}/", timeout=5)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = http.post(f"{BASE_URL}/messages", data={"text": "   ", "csrfmiddlewaretoken": token},
                         headers={"Referer": f"{BASE_URL}/"}, allow_redirects=False, timeout=5)
    assert response.status_code == 400
    assert "text must be a non-empty string" in response.text and "Message board" in response.text


def test_api_rejects_bad_json_with_a_json_error(http):
    response = http.post(f"{BASE_URL}/api/messages", data="{not json", timeout=5,
                         headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"


def test_app_and_nginx_json_errors_have_one_shape(http):
    """Whoever answers with an error, the body has nginx's keys and no others:
    error (a code), reason (for people), request_id (as in the X-Request-ID header)."""
    answers = {
        "app 400": http.post(f"{BASE_URL}/api/messages", data="{not json", timeout=5,
                             headers={"Content-Type": "application/json"}),
        "app 400 (Idempotency-Key)": http.post(f"{BASE_URL}/api/messages", json={"text": "x"}, timeout=5,
                                               headers={"Idempotency-Key": "k" * 300}),
        "app 400 (long-poll)": http.get(f"{BASE_URL}/api/messages/poll", params={"timeout": "soon"}, timeout=5),
        "nginx 404": http.get(f"{BASE_URL}/static/no-such-file.css", timeout=5),
    }
    for name, response in answers.items():
        assert response.status_code in (400, 404), (name, response.status_code, response.text[:200])
        body = response.json()
        assert set(body) == {"error", "reason", "request_id"}, (name, body)
        assert body["error"] and body["reason"] and body["request_id"] == response.headers["X-Request-ID"], (name, body)
