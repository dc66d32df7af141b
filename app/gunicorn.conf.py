"""gunicorn settings for the `wsgi` service (bin/start-wsgi)."""

import os

bind = "0.0.0.0:8000"
# gthread: a few processes with threads each; threads overlap the waits on
# PostgreSQL. Tuned for this 2-core machine by scripts/bench.
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
accesslog = None  # nginx logs every request; one access log is enough
errorlog = "-"
forwarded_allow_ips = "*"  # only nginx can reach this port (internal network)
