"""Prometheus metrics of the app (prometheus-client), served on their own port
(APP_METRICS_PORT, 9100) on the backend network only, never through nginx.

gunicorn runs several worker processes, so the metrics use prometheus-client's
multiprocess mode: each process writes its values to files in PROMETHEUS_MULTIPROC_DIR
(a tmpfs, emptied at each container start by bin/start-wsgi and bin/start-asgi), and
the one HTTP server (gunicorn's master, or the uvicorn process) sums them per scrape.
Nothing here imports Django: gunicorn's master starts the server from its config."""

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, start_http_server

REQUESTS = Counter(
    "django_http_requests_total", "Requests answered by Django, by route pattern, method and status.",
    ["route", "method", "status"],
)
# prometheus-client's default buckets (5 ms .. 10 s); 0.7 s is nginx's read timeout for
# a container before it retries elsewhere, 1 s the latency the failover suite promises.
LATENCY = Histogram(
    "django_http_request_duration_seconds", "Time from Django's first middleware to the response.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.7, 1.0, 2.5, 5.0, 10.0, 30.0),
)
# The last /readyz answer in this container (the Docker healthcheck asks every 3 s):
# 1 ready, 0 not. "livemostrecent": the newest value among live worker processes.
READY = Gauge("django_ready", "1 if the last /readyz check passed (database and Redis answer).",
              multiprocess_mode="livemostrecent")
READY_CHECKED = Gauge("django_ready_checked_timestamp_seconds", "When /readyz last ran (Unix time).",
                      multiprocess_mode="livemostrecent")

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def observe(route, method, status, duration):
    method = method if method in METHODS else "other"  # a label set bounded whatever clients send
    REQUESTS.labels(route, method, str(status)).inc()
    LATENCY.labels(route, method).observe(duration)
    if route == "readyz":
        READY.set(1 if status == 200 else 0)
        READY_CHECKED.set_to_current_time()


def serve():
    """Start the metrics HTTP server in a daemon thread of this process."""
    port = int(os.environ.get("APP_METRICS_PORT", "9100"))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    start_http_server(port, addr="0.0.0.0", registry=registry)


def process_exited(pid):
    """gunicorn's child_exit hook: drop a dead worker's live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
