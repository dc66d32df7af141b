"""The one settings module. Every value comes from the environment or from a
secret file named by `<NAME>_FILE` (Compose mounts secrets under /run/secrets)."""

import os
import socket
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=None):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    """Comma-separated; unset or empty means the default (Compose passes `${X:-}` as "")."""
    return [item.strip() for item in (os.environ.get(name) or default).split(",") if item.strip()]


def secret(name, default=None):
    """`NAME_FILE` (a path) wins over `NAME` (a value); a missing required secret is an error."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path} cannot be read: {exc}") from exc
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"set {name}_FILE (preferred) or {name}")
    return value


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = secret("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1")
# The site's https:// origins for CSRF checks: by default one per allowed name, so
# setting DJANGO_ALLOWED_HOSTS alone is enough for a real domain.
CSRF_TRUSTED_ORIGINS = env_list(
    "DJANGO_CSRF_TRUSTED_ORIGINS",
    ",".join(f"https://{'*' if h.startswith('.') else ''}{h}" for h in ALLOWED_HOSTS if h != "*"),
)

# The release this image was built as (app/Dockerfile, scripts/deploy): in /api/whoami and
# in every response's X-App-Version header, so each answer says which version produced it.
APP_VERSION = env("APP_VERSION", "dev")
# Which server runs this process (set by bin/start-wsgi and bin/start-asgi) and
# which container: shown on pages and in the X-Served-By header. A label only: no code
# branches on it (what the code needs to know about the server is EVENT_LOOP).
SERVER_KIND = env("SERVER_KIND", "manage.py")
# How this process runs async code, which decides how live updates use Redis (board/live.py):
# - "shared": one event loop serves every request (uvicorn; bin/start-asgi sets it), so all
#   subscriptions share the process's channel layer;
# - "per-request": each request thread runs an event loop of its own (gunicorn's threads;
#   bin/start-wsgi sets it), so each subscription needs a layer of its own. The default: it
#   works under any server (manage.py, CGI), where "shared" fails under a threaded one.
# Set by the start script that chooses the server, so the two cannot disagree.
EVENT_LOOPS = ("shared", "per-request")
EVENT_LOOP = env("DJANGO_EVENT_LOOP", "per-request")
if EVENT_LOOP not in EVENT_LOOPS:
    raise ImproperlyConfigured(f"DJANGO_EVENT_LOOP={EVENT_LOOP!r}: must be one of {', '.join(EVENT_LOOPS)}")
CONTAINER_NAME = socket.gethostname()
# X-Served-By names the container on every response, so tests can see where each
# request went. Turn it off in production if you do not want to expose it.
SERVED_BY_HEADER = env_bool("DJANGO_SERVED_BY_HEADER", True)
# The app is reachable only through nginx (the backend network is internal), so
# the client address nginx forwards can be trusted. Turn off if that changes.
TRUST_PROXY_HEADERS = env_bool("DJANGO_TRUST_PROXY_HEADERS", True)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "board",
]

MIDDLEWARE = [
    # First: it sees every response, the others' included (request id, access log, metrics).
    "board.middleware.ObservabilityMiddleware",
    "board.middleware.ServedByMiddleware",
    "board.middleware.ProxyClientAddressMiddleware",
    "board.middleware.DependencyUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": env("POSTGRES_HOST", "db"),
        "PORT": env("POSTGRES_PORT", "5432"),
        "NAME": env("POSTGRES_DB", "app"),
        "USER": env("POSTGRES_USER", "app"),
        "PASSWORD": secret("POSTGRES_PASSWORD", ""),
        # Persistent connections suit gunicorn's threads; the ASGI tier sets 0
        # (Django's advice: per-request threads there cannot reuse them) and a pool instead.
        "CONN_MAX_AGE": int(env("DJANGO_DB_CONN_MAX_AGE", "60")),
        # Also the pool's `check` on every checkout (Django passes it when this is on), so a
        # connection that a database restart broke is dropped, never handed to a request.
        "CONN_HEALTH_CHECKS": True,
        # Fail fast (and answer 503) rather than hold a request while the DB is away.
        "OPTIONS": {"connect_timeout": int(env("POSTGRES_CONNECT_TIMEOUT", "3"))},
    }
}

# psycopg's connection pool, one per process (the ASGI tier: DJANGO_DB_POOL_MAX_SIZE set,
# CONN_MAX_AGE 0 as Django requires). Without it uvicorn opened a PostgreSQL connection per
# request and answered the home page ~10x slower than gunicorn (issue 12).
if env("DJANGO_DB_POOL_MAX_SIZE"):
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": int(env("DJANGO_DB_POOL_MIN_SIZE", "2")),
        "max_size": int(env("DJANGO_DB_POOL_MAX_SIZE")),
        # Wait for a free connection at most this long, then a 503: under nginx's 700 ms
        # read timeout, so a full pool or an absent database answers before nginx retries.
        "timeout": float(env("DJANGO_DB_POOL_TIMEOUT", "0.5")),
        # Give up a reconnection attempt after 2 s (default 5 min, with a doubling back-off):
        # the next request starts a fresh one, so the pool finds a restarted database
        # within ~2 s instead of after a back-off that grew while it was away.
        "reconnect_timeout": float(env("DJANGO_DB_POOL_RECONNECT_TIMEOUT", "2")),
        # Renew connections hourly (psycopg's default, said here): no server process grows forever.
        "max_lifetime": 3600.0,
    }

REDIS_URL = env("REDIS_URL", "redis://redis:6379")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"{REDIS_URL}/0",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}
# Channels' layer carries new-message events to every uvicorn container.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [f"{REDIS_URL}/1"]},
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# collectstatic runs at image build; nginx serves the result (hashed names) from a volume.
STATIC_URL = "/static/"
STATIC_ROOT = env("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}

# nginx terminates TLS and says so in X-Forwarded-Proto (it overwrites any client value).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
# nginx already redirects plain HTTP; this catches a request that reached the app
# any other way. The container healthcheck speaks plain HTTP to 127.0.0.1: exempt.
# (scripts/bench's containers turn it off in their own settings: bench/app/benchsite/.)
SECURE_SSL_REDIRECT = not DEBUG
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
# nginx sends HSTS (and hides the app's copy); the values are set here too so that
# `manage.py check --deploy` describes the site as it is served.
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
# HSTS preload is a promise about every subdomain of your domain, made on
# hstspreload.org: a decision for the domain's owner, not a template default.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# JSON, one object per line, the same for gunicorn, uvicorn and Django: config/logging.json.
LOGGING = logging_config()
