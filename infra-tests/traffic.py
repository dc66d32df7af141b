"""A steady mix of GET traffic to the edge (https://127.0.0.1 by default), bounded in count and time,
recording every request: when it started, how long it took, what came back and
which container answered. Threads and requests.Session (keep-alive) are enough
for a few hundred requests a second, and keep the generator easy to read."""

import random
import re
import threading
import time
from dataclasses import asdict, dataclass

import requests
from stack import SITE
from urllib3.util.retry import Retry

# Like a browser (RFC 9112 section 9.3.1): a GET whose connection closes before any answer
# arrives is sent once more, on a new connection. nginx closes idle keep-alive connections
# when it reloads (a renewed certificate, a new configuration), and a request sent into
# that instant gets no answer at all; browsers retry such requests without telling the
# user. Nothing else is retried: a refused connection, a timeout's time, and every answer
# (502, 503, a bad body) stay what they are, and a retried request's duration is the sum.
KEEPALIVE_RETRY = Retry(total=1, connect=0, read=1, status=0, other=0, redirect=0,
                        allowed_methods=frozenset({"GET"}), raise_on_status=False)


@dataclass
class Record:
    start: float  # wall clock (time.time()), comparable with Docker's timestamps
    duration: float  # seconds
    kind: str
    status: int | None  # HTTP status, None when the request raised
    error: str | None  # why it failed (exception, bad status, bad body), None when it did not
    served_by: str | None  # X-Served-By: the app container, None for nginx (static)
    client_retried: bool = False  # sent again after its connection closed with no answer (KEEPALIVE_RETRY)

    @property
    def ok(self):
        return self.error is None

    def as_dict(self):
        return asdict(self)


def check_whoami(response):
    body = response.json()
    return body.get("container") == response.headers.get("X-Served-By")


def check_messages(response):
    return isinstance(response.json().get("messages"), list)


def discover_static(session, base_url):
    page = session.get(f"{base_url}/", timeout=5).text
    css = re.search(r'href="(/static/[^"]+\.css)"', page).group(1)
    size = len(session.get(f"{base_url}{css}", headers={"Accept-Encoding": "identity"}, timeout=5).content)
    return css, size


class Traffic:
    """`with Traffic(ca_file) as traffic: ...` runs the mix in the background."""

    def __init__(self, ca_file, *, rate=150.0, workers=8, min_requests=5000, max_requests=100_000,
                 max_seconds=240.0, progress=None, label="traffic", site=SITE, mix=None):
        self.ca_file, self.rate, self.workers, self.site = ca_file, rate, workers, site
        self.min_requests, self.max_requests, self.max_seconds = min_requests, max_requests, max_seconds
        self.progress, self.label = progress, label
        self.records = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        # (kind, url, weight, body check); `mix` replaces the Django routes' (test_polyglot.py).
        self.mix = mix or self.django_mix()

    def django_mix(self):
        with self._session() as session:
            self.static_url, self.static_size = discover_static(session, self.site.base_url)
        return [
            ("whoami", "/api/whoami", 4, check_whoami),
            ("home", "/", 2, lambda r: "</html>" in r.text and "Message board" in r.text),
            ("messages", "/api/messages?limit=5", 2, check_messages),
            ("static", self.static_url, 2, lambda r: len(r.content) == self.static_size),
            ("poll", "/api/messages/poll?timeout=0.25", 1, check_messages),
        ]

    def _session(self):
        session = self.site.session(self.ca_file)
        session.headers["Accept-Encoding"] = "identity"
        for prefix, adapter in list(session.adapters.items()):
            if prefix.startswith("https://"):
                adapter.max_retries = KEEPALIVE_RETRY
        return session

    def __enter__(self):
        self.started = time.time()
        self._deadline = time.monotonic() + self.max_seconds
        for n in range(self.workers):
            thread = threading.Thread(target=self._worker, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)
        reporter = threading.Thread(target=self._report, daemon=True)
        reporter.start()
        self._threads.append(reporter)
        return self

    def __exit__(self, *exc):
        self.stop()

    def count(self):
        return len(self.records)

    def stop(self, wait_for_minimum=True):
        """Stop, after the minimum number of requests unless told otherwise (bounded by max_seconds)."""
        while wait_for_minimum and self.count() < self.min_requests and time.monotonic() < self._deadline:
            time.sleep(0.1)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        self.ended = time.time()
        return sorted(self.records, key=lambda r: r.start)

    def _running(self):
        return not self._stop.is_set() and len(self.records) < self.max_requests and time.monotonic() < self._deadline

    def _worker(self, n):
        rng = random.Random(n)
        kinds = [entry for entry in self.mix for _ in range(entry[2])]
        interval = self.workers / self.rate  # each worker's share of the target rate
        next_at = time.monotonic() + rng.random() * interval
        with self._session() as session:
            while self._running():
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                next_at = max(next_at + interval, time.monotonic())  # fall behind, never burst
                kind, url, _, check = rng.choice(kinds)
                record = self._one(session, kind, url, check)
                with self._lock:
                    self.records.append(record)

    def _one(self, session, kind, url, check):
        start, t0 = time.time(), time.perf_counter()
        status = served_by = error = None
        retried = False
        try:
            response = session.get(f"{self.site.base_url}{url}", timeout=(2, 5))
            retried = bool(getattr(response.raw, "retries", None) and response.raw.retries.history)
            status = response.status_code
            served_by = response.headers.get("X-Served-By")
            if status != 200:
                error = f"HTTP {status}"
            elif not check(response):
                error = "unexpected body"
        except (requests.RequestException, ValueError) as exc:
            error = f"{type(exc).__name__}: {str(exc)[:160]}"
        return Record(start, time.perf_counter() - t0, kind, status, error, served_by, retried)

    def _report(self):
        last = 0.0
        while not self._stop.wait(0.25):
            if self.progress and time.monotonic() - last >= 2:
                last = time.monotonic()
                records = list(self.records)
                failed = sum(not r.ok for r in records)
                recent = sorted(r.duration for r in records[-500:]) or [0]
                p99 = recent[int(0.99 * (len(recent) - 1))]
                self.progress(f"  {self.label}: {time.time() - self.started:5.1f} s, {len(records)} requests, "
                              f"{failed} failed, recent p99 {p99 * 1000:.0f} ms")


@dataclass
class Write:
    key: str  # the Idempotency-Key, also the message text: unique per write
    first_sent: float
    acknowledged_at: float | None = None
    message_id: int | None = None
    attempts: int = 0
    statuses: list | None = None  # what each attempt got: an HTTP status or an exception name
    replayed: bool = False

    def as_dict(self):
        return asdict(self)


class Writer:
    """POSTs new messages with a unique Idempotency-Key each and, like a careful
    client, retries its own failures with the SAME key (bounded: 12 attempts or
    20 s per write), honouring Retry-After. `with Writer(...) as writer:`."""

    RETRYABLE = {409, 429, 502, 503, 504}

    def __init__(self, ca_file, label, *, rate=20.0, workers=2, max_writes=5000, max_seconds=240.0, site=SITE,
                 path="/api/messages"):
        self.ca_file, self.label, self.rate, self.workers, self.site = ca_file, label, rate, workers, site
        self.path = path
        self.max_writes, self.max_seconds = max_writes, max_seconds
        self.writes = []
        self._lock, self._stop, self._threads = threading.Lock(), threading.Event(), []
        self._counter = 0

    def __enter__(self):
        self._deadline = time.monotonic() + self.max_seconds
        for _ in range(self.workers):
            thread = threading.Thread(target=self._worker, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)  # a write in progress finishes its retries (bounded)
        return list(self.writes)

    def _next_key(self):
        with self._lock:
            self._counter += 1
            return f"w-{self.label}-{int(time.time())}-{self._counter}-{random.getrandbits(32):08x}"

    def _worker(self):
        interval = self.workers / self.rate
        with self.site.session(self.ca_file) as session:
            while not self._stop.is_set() and len(self.writes) < self.max_writes and time.monotonic() < self._deadline:
                started = time.monotonic()
                write = Write(key=self._next_key(), first_sent=time.time(), statuses=[])
                with self._lock:
                    self.writes.append(write)
                self._deliver(session, write)
                time.sleep(max(0.0, interval - (time.monotonic() - started)))

    def _deliver(self, session, write):
        give_up = time.monotonic() + 20
        while write.attempts < 12 and time.monotonic() < give_up:
            write.attempts += 1
            wait = 0.2 * write.attempts
            try:
                response = session.post(f"{self.site.base_url}{self.path}", json={"text": write.key},
                                        headers={"Idempotency-Key": write.key}, timeout=(2, 10))
                write.statuses.append(response.status_code)
                if response.status_code in (200, 201):
                    body = response.json()
                    if body.get("text") == write.key:
                        write.message_id, write.acknowledged_at = body["id"], time.time()
                        write.replayed = response.headers.get("Idempotent-Replayed") == "true"
                        return
                    write.statuses.append("wrong body")
                elif response.status_code not in self.RETRYABLE:
                    return  # 4xx other than 409/429: retrying the same request cannot help
                retry_after = response.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    wait = min(float(retry_after), 2.0)
            except (requests.RequestException, ValueError) as exc:
                write.statuses.append(type(exc).__name__)
            time.sleep(wait)
