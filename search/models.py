from django.conf import settings
from django.db import models


class SavedSearch(models.Model):
    """A user's named query; shared by URL (permalink), never by tenant."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_searches"
    )
    name = models.CharField(max_length=120)
    query = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="saved_search_unique_name")]

    def __str__(self) -> str:
        return self.name
