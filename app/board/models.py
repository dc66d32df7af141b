from django.db import models

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
