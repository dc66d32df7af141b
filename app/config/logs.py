"""JSON logs for gunicorn, uvicorn and Django (config/logging.json wires them up):
one object per line, with the keys nginx's access log uses where they mean the same
thing (time, level, request_id, container, status, duration). Imported by gunicorn's
and uvicorn's logging set-up before Django, so nothing here may import Django.

One access record per request comes from the app (logger `board.access`, see
board.middleware.ObservabilityMiddleware): it has the request id, route and duration for
both servers. gunicorn's and uvicorn's own access loggers are therefore at WARNING in
logging.json (uvicorn's knows no request id); set them to INFO to get theirs too, as JSON."""

import contextvars
import logging
import os
import re
import socket
import uuid
from datetime import datetime, timezone

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# The request being served by this thread or task (set by board.middleware.ObservabilityMiddleware).
request_id = contextvars.ContextVar("request_id", default=None)

# What nginx accepts from a client (nginx/conf/request-id.conf); anything else is replaced.
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id_from(header):
    """The X-Request-ID nginx sent, if well-formed; else a new id shaped like nginx's own."""
    if header and VALID_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record logged while a request is being served, and
    to Django's `django.request` records, which are logged after the middleware has
    returned but carry the request."""

    def filter(self, record):
        if not hasattr(record, "request_id"):
            current = getattr(getattr(record, "request", None), "request_id", None) or request_id.get()
            if current is not None:
                record.request_id = current
        return True


class Formatter(JsonFormatter):
    """python-json-logger with this stack's keys: time (ISO 8601, UTC, first), level,
    logger, message, container, server, then the record's extras. A traceback stays in
    the one record, as `exc_info`."""

    def __init__(self, *args, **kwargs):
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            static_fields={"container": socket.gethostname(), "server": os.environ.get("SERVER_KIND", "manage.py")},
            # uvicorn adds an ANSI-coloured copy of its message: noise in JSON.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        )

    def add_fields(self, log_data, record, message_dict):
        log_data["time"] = datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds")
        super().add_fields(log_data, record, message_dict)


# Python's warnings (a library's DeprecationWarning at start-up, say) become log records,
# so they are JSON too instead of a raw line on stderr.
logging.captureWarnings(True)


def logging_config():
    """config/logging.json, with DJANGO_LOG_LEVEL (if set) as the root level."""
    import json
    from pathlib import Path

    config = json.loads((Path(__file__).with_name("logging.json")).read_text())
    config["root"]["level"] = os.environ.get("DJANGO_LOG_LEVEL", config["root"]["level"])
    return config
