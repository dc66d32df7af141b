from django.db import models
from django.utils import timezone

MAX_TEXT = 500


class Message(models.Model):
    text = models.CharField(max_length=MAX_TEXT)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # The container that accepted the write: shows the load balancing at work.
    served_by = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return self.text[:50]

    def as_dict(self):
        return {
            "id": self.id,
            "text": self.text,
            "created_at": self.created_at.isoformat(),
            "served_by": self.served_by,
        }


class IdempotencyRecord(models.Model):
    """A write API's response, stored under the client's Idempotency-Key in the
    same transaction as the write itself (see idempotency.py)."""

    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=200)  # "POST /api/messages": a key belongs to one route
    fingerprint = models.CharField(max_length=64)  # sha256 of the request body
    status = models.PositiveSmallIntegerField()
    body = models.TextField()
    content_type = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "scope"], name="idempotency_key_per_route")]
