"""gunicorn settings for the `wsgi` service (bin/start-wsgi)."""

import os

from config.logs import logging_config

bind = "0.0.0.0:8000"
# gthread: a few processes with threads each; threads overlap the waits on
# PostgreSQL. Shape measured by `scripts/bench --tune` on this 2-core machine (one
# CPU per container), requests/s on the home page / the messages JSON, two runs:
# 2x4 413/774 and 409/730; 1x8 308/623 (one process: every thread shares one GIL);
# 4x2 395/657; 2x8 403/606 (more threads only queue for the GIL); 4x4 423/683,
# no better for twice the processes and memory. So 2 workers x 4 threads.
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Import Django once in the master and fork the workers from it: a restarting
# container costs one import instead of one per worker (CPU is what a crash
# storm runs short of), and the workers share the memory. Django opens no
# database connection at import, so nothing is shared that must not be.
preload_app = True
# Longer than nginx's upstream keepalive_timeout (60 s), so nginx always closes an
# idle connection first and never reuses a socket gunicorn is closing.
keepalive = 75
# A stuck worker is killed and replaced after this long.
timeout = 30
# On SIGTERM, in-flight requests get this long; compose's stop_grace_period is longer.
graceful_timeout = 20
# Heartbeat files on tmpfs, not on the (read-only) image filesystem.
worker_tmp_dir = "/dev/shm"
# JSON logs (config/logging.json), as uvicorn and Django. No access log of gunicorn's own:
# the app writes one access record per request, with its request id (config/logs.py).
accesslog = None
errorlog = "-"
logconfig_dict = logging_config()
# gunicorn >= 25.1 opens a control socket for `gunicornc` under $HOME, which is not
# writable here (read-only root filesystem) and logged an ERROR at every start.
# Nothing in a container uses gunicornc (docker stop/kill signal the master), so: off.
control_socket_disable = True
forwarded_allow_ips = "*"  # only nginx can reach this port (internal network)


# Prometheus metrics (board/metrics.py): one HTTP server in the master, summing what
# every worker wrote to PROMETHEUS_MULTIPROC_DIR.
def when_ready(server):
    from board import metrics

    metrics.serve()


def child_exit(server, worker):
    from board import metrics

    metrics.process_exited(worker.pid)
