import logging
import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from config.logs import request_id, request_id_from
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from board import metrics
from board.errors import error_response

log = logging.getLogger(__name__)
access_log = logging.getLogger("board.access")


class ObservabilityMiddleware:
    """First in MIDDLEWARE: the request id, one access record, the metrics.

    - the id nginx sent in X-Request-ID (validated again; a new one if absent) is set
      for every log record this request causes (config.logs) and returned in the
      response's X-Request-ID header;
    - one JSON access record per request (logger `board.access`), with nginx's keys;
    - requests by route and status, and their latency (board.metrics).
    Both sync and async, so uvicorn runs it on its event loop without a thread hop.
    Hand-written: it is the glue between the three, and the library parts (the JSON
    formatter, prometheus-client) do the rest."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        started, token = self._start(request)
        try:
            response = self.get_response(request)
            self._finish(request, response, started)
        finally:
            request_id.reset(token)
        return response

    async def _acall(self, request):
        started, token = self._start(request)
        try:
            response = await self.get_response(request)
            self._finish(request, response, started)
        finally:
            request_id.reset(token)
        return response

    def _start(self, request):
        request.request_id = request_id_from(request.headers.get("X-Request-ID"))
        return time.perf_counter(), request_id.set(request.request_id)

    def _finish(self, request, response, started):
        duration = time.perf_counter() - started
        match = request.resolver_match
        route = match.route if match is not None else "unmatched"
        metrics.observe(route, request.method, response.status_code, duration)
        response["X-Request-ID"] = request.request_id
        # Docker's healthcheck asks /readyz every 3 s from inside the container: not
        # worth a line each. Through nginx (which always sends an id) they are logged.
        if route in ("healthz", "readyz") and "X-Request-ID" not in request.headers:
            return
        access_log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "route": route,
                "status": response.status_code,
                "duration": round(duration, 4),
                "client": request.META.get("REMOTE_ADDR"),
            },
        )


class ServedByMiddleware:
    """Names the release on every response, and the container (settings.SERVED_BY_HEADER)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["X-App-Version"] = settings.APP_VERSION
        if settings.SERVED_BY_HEADER:
            response["X-Served-By"] = settings.CONTAINER_NAME
        return response


class ProxyClientAddressMiddleware:
    """REMOTE_ADDR := the client address nginx saw. nginx sets X-Forwarded-For
    to $remote_addr (it overwrites, never appends), so there is exactly one
    value and the client cannot forge it. Hand-written because it is three lines."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if settings.TRUST_PROXY_HEADERS and forwarded:
            request.META["REMOTE_ADDR"] = forwarded.split(",")[-1].strip()
        return self.get_response(request)


class DependencyUnavailableMiddleware:
    """A database or Redis outage is a 503 with a reason and Retry-After, never
    a 500 with a stack trace."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, (OperationalError, InterfaceError)) or (
            isinstance(exception, DatabaseError) and "connection" in str(exception).lower()
        ):
            log.warning("database unavailable: %s", exception)
            return error_response(503, "service_unavailable", "database unavailable", retry_after=2)
        if isinstance(exception, (RedisConnectionError, RedisTimeoutError)):
            log.warning("redis unavailable: %s", exception)
            return error_response(503, "service_unavailable", "redis unavailable", retry_after=2)
        return None
