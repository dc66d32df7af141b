"""Idempotency-Key for write APIs (IETF httpapi draft "The Idempotency-Key HTTP
Header Field"). Hand-written: the Django packages for this predate Django 6 or
need Django REST framework, and none stores the key in the same transaction as
the write, which is the whole point. It is small:

- no key: the view runs as usual (and nginx will not retry the request);
- a new key: the write and the stored response commit in ONE transaction, so a
  key is recorded if and only if its write happened;
- the same key and payload again: the stored response, nothing written
  (`Idempotent-Replayed: true`);
- the same key with another payload: 422;
- the same key while the first request is still running: 409 (a transaction-
  scoped advisory lock, so the second request never waits on the first);
- keys expire after IDEMPOTENCY_KEY_TTL (24 h) and are purged as writes go by.
"""

import functools
import hashlib
import random
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpResponse
from django.utils import timezone

from .errors import error_response
from .models import IdempotencyRecord

MAX_KEY_LENGTH = 255
PURGE_PROBABILITY = 0.01  # about one write in a hundred also deletes expired keys


def ttl():
    return timedelta(seconds=getattr(settings, "IDEMPOTENCY_KEY_TTL", 24 * 3600))


def lock_id(scope):
    # pg_try_advisory_xact_lock takes a signed 64-bit integer.
    return int.from_bytes(hashlib.sha256(scope.encode()).digest()[:8], "big", signed=True)


def idempotent(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if request.method in ("GET", "HEAD", "OPTIONS") or key is None:
            return view(request, *args, **kwargs)
        key = key.strip().strip('"')  # the draft sends it as a quoted string; accept both
        if not key or len(key) > MAX_KEY_LENGTH:
            return error_response(400, "invalid_idempotency_key",
                                  f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
        scope = f"{request.method} {request.path}"
        fingerprint = hashlib.sha256(request.body).hexdigest()

        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock_id(f"{scope} {key}")])
                if not cursor.fetchone()[0]:
                    return error_response(409, "request_in_progress",
                                          "a request with this Idempotency-Key is still being processed; retry shortly",
                                          retry_after=1)
            now = timezone.now()
            stored = IdempotencyRecord.objects.filter(key=key, scope=scope).first()
            if stored and stored.created_at < now - ttl():
                stored.delete()
                stored = None
            if stored:
                if stored.fingerprint != fingerprint:
                    return error_response(422, "idempotency_key_reused",
                                          "this Idempotency-Key was used with a different request payload")
                replay = HttpResponse(stored.body, status=stored.status, content_type=stored.content_type)
                replay["Idempotent-Replayed"] = "true"
                return replay

            response = view(request, *args, **kwargs)
            if response.status_code >= 500:
                # Nothing to remember: undo whatever the view did, so a retry starts clean.
                transaction.set_rollback(True)
                return response
            IdempotencyRecord.objects.create(
                key=key, scope=scope, fingerprint=fingerprint, status=response.status_code,
                body=response.content.decode(), content_type=response.get("Content-Type", "application/json"),
            )
            if random.random() < PURGE_PROBABILITY:
                IdempotencyRecord.objects.filter(created_at__lt=now - ttl()).delete()
            return response

    return wrapper
