"""Liveness and readiness, for Docker's healthcheck (bin/healthcheck), nginx and
Prometheus (board.metrics counts the `readyz` route's answers)."""

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_safe

from .errors import error_response


@require_safe
def healthz(request):
    """Liveness: the process answers. Touches neither the database nor Redis."""
    return JsonResponse({"status": "alive"})


@require_safe
def readyz(request):
    """Readiness: the database and Redis both answer; otherwise 503 with the reason."""
    problems = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        problems["database"] = type(exc).__name__
    try:
        cache.get("readyz")
    except Exception as exc:  # noqa: BLE001
        problems["redis"] = type(exc).__name__
    if problems:
        reason = ", ".join(f"{name} unavailable ({kind})" for name, kind in problems.items())
        return error_response(503, "service_unavailable", reason, retry_after=2, status="unavailable",
                              checks=problems)
    return JsonResponse({"status": "ready"})
