"""`wsgi` scaled to 3 and back to 2 while traffic flows: the site stays up and the
new container takes its share."""

import threading
import time
from collections import Counter

import pytest
import requests
from stack import BASE_URL, SITE, compose


class Traffic(threading.Thread):
    """GET /api/whoami in a loop, bounded in count and time, recording every outcome."""

    def __init__(self, ca_file, max_requests=6000, max_seconds=150):
        super().__init__(daemon=True)
        self.ca_file, self.max_requests, self.max_seconds = ca_file, max_requests, max_seconds
        self.stop = threading.Event()
        self.served = Counter()
        self.failures = []
        self.count = 0

    def run(self):
        deadline = time.monotonic() + self.max_seconds
        with SITE.session(self.ca_file) as session:
            while not self.stop.is_set() and self.count < self.max_requests and time.monotonic() < deadline:
                self.count += 1
                try:
                    response = session.get(f"{BASE_URL}/api/whoami", timeout=5)
                    if response.status_code != 200:
                        self.failures.append((time.time(), response.status_code, response.text[:200]))
                    else:
                        self.served[response.headers["X-Served-By"]] += 1
                except requests.RequestException as exc:
                    self.failures.append((time.time(), type(exc).__name__, str(exc)[:200]))
                time.sleep(0.01)


@pytest.mark.scaling
def test_scale_wsgi_to_three_and_back_to_two_without_failures(stack, ca_file):
    before = set(stack.app_hostnames("wsgi"))
    traffic = Traffic(ca_file)
    traffic.start()
    try:
        compose("up", "--detach", "--wait", "--no-recreate", "--scale", "wsgi=3")
        stack.wait_healthy("wsgi", 3)
        (new,) = set(stack.app_hostnames("wsgi")) - before
        # The new container must take traffic (nginx re-resolves the name every second).
        deadline = time.monotonic() + 15
        while traffic.served[new] < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert traffic.served[new] >= 5, f"new container {new} took no traffic: {traffic.served}"

        compose("up", "--detach", "--wait", "--no-recreate", "--scale", "wsgi=2")
        stack.wait_healthy("wsgi", 2)
        time.sleep(3)  # traffic goes on after the scale-down
    finally:
        traffic.stop.set()
        traffic.join(timeout=30)
    assert traffic.count > 200, traffic.count
    assert traffic.failures == [], traffic.failures[:10]
    assert len(stack.containers("wsgi")) == 2
