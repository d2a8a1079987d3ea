"""API tokens for the CLI and scripts: shown once at creation, stored only as a hash."""

import secrets

from django.conf import settings
from django.db import models

from ingest.models import hash_token


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=12, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.hint})"

    @classmethod
    def issue(cls, user, name: str) -> tuple["ApiToken", str]:
        clear = "lsu_" + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, token_hash=hash_token(clear), hint=clear[:8] + "…")
        return token, clear
