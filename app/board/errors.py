"""The app's error answers: one helper, one JSON body, with nginx's keys
(nginx/errors/*.json and @edge_unavailable in nginx/nginx.conf), so a client reads
every error the same way, whoever answered:

    {"error": "<code>", "reason": "<what went wrong, for a person>", "request_id": "<X-Request-ID>"}

plus any keys a particular answer adds after those three."""

from config.logs import request_id
from django.http import JsonResponse


def error_response(status, error, reason, /, *, retry_after=None, **extra):
    """`error`: a stable snake_case code for programs; `reason`: one sentence for people;
    `retry_after` (seconds): sent as Retry-After, for answers worth retrying. The first
    three are positional-only, so `extra` may name a key `status` (/readyz does)."""
    response = JsonResponse({"error": error, "reason": reason, "request_id": request_id.get(), **extra},
                            status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response
