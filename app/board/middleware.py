import logging

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import JsonResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)


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


def unavailable(reason, retry_after=2):
    response = JsonResponse({"error": "service_unavailable", "reason": reason}, status=503)
    response["Retry-After"] = str(retry_after)
    return response


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
            return unavailable("database unavailable")
        if isinstance(exception, (RedisConnectionError, RedisTimeoutError)):
            log.warning("redis unavailable: %s", exception)
            return unavailable("redis unavailable")
        return None
