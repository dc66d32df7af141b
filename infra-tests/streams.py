"""Clients that behave like a browser's: an EventSource-style SSE reader and a
WebSocket client like site.js, each reconnecting by itself and recording the
message ids it received and when each connection was made."""

import json
import socket
import ssl
import threading
import time

import requests
from stack import SITE
from websockets.sync.client import connect


class SseClient(threading.Thread):
    """Behaves like a browser's EventSource: reconnects after `retry` ms with Last-Event-ID."""

    def __init__(self, ca_file, deadline, site=SITE):
        super().__init__(daemon=True)
        self.ca_file, self.deadline, self.site = ca_file, deadline, site
        self.ids, self.connections, self.stop = set(), [], threading.Event()
        self.last_id, self.retry = None, 1.0

    def run(self):
        with self.site.session(self.ca_file) as session:
            while not self.stop.is_set() and time.monotonic() < self.deadline:
                headers = {"Last-Event-ID": str(self.last_id)} if self.last_id else {}
                try:
                    with session.get(f"{self.site.base_url}/api/messages/stream", headers=headers, stream=True,
                                     timeout=(2, 20)) as response:
                        self.connections.append((time.time(), response.headers.get("X-Served-By")))
                        for line in response.iter_lines(decode_unicode=True):
                            if self.stop.is_set():
                                return
                            if line.startswith("retry:"):
                                self.retry = int(line.split(":")[1]) / 1000
                            elif line.startswith("id:"):
                                self.last_id = int(line.split(":")[1])
                                self.ids.add(self.last_id)
                except (requests.RequestException, ValueError):
                    pass
                time.sleep(self.retry)


class WebSocketClient(threading.Thread):
    """Behaves like site.js: reconnects after 500 ms and sends {"type": "resume"}."""

    def __init__(self, ca_file, deadline, want_container=None, site=SITE):
        super().__init__(daemon=True)
        self.context = ssl.create_default_context(cafile=ca_file)
        self.site = site
        self.deadline, self.want = deadline, want_container
        self.ids, self.connections, self.stop = set(), [], threading.Event()
        self.attempts = []  # (time, container or error): for the failure message

    def run(self):
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            try:
                # Connected to the site's address, speaking to it by its name (SNI, Host, Origin).
                name = self.site.name or self.site.address
                raw = socket.create_connection((self.site.address, 443), timeout=3)
                with connect(f"wss://{name}/ws/messages", sock=raw, ssl=self.context, origin=f"https://{name}",
                             open_timeout=3) as sock:
                    hello = json.loads(sock.recv(timeout=3))
                    self.attempts.append((time.time(), hello["container"]))
                    if self.want and not self.connections and hello["container"] != self.want:
                        time.sleep(0.05)
                        continue  # the first socket must share the SSE stream's container
                    self.connections.append((time.time(), hello["container"]))
                    sock.send(json.dumps({"type": "resume", "after": max(self.ids, default=0)}))
                    while not self.stop.is_set():
                        try:
                            event = json.loads(sock.recv(timeout=0.5))
                        except TimeoutError:
                            continue
                        if event.get("type") == "message":
                            self.ids.add(event["message"]["id"])
            except Exception as exc:  # noqa: BLE001 - any disconnect: wait and reconnect, like the page
                self.attempts.append((time.time(), f"{type(exc).__name__}: {exc}"))
            time.sleep(0.5)


def wait_for(condition, timeout, what, detail=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} {detail()}")
