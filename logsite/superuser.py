"""The first superuser of a new installation, so that a fresh start can be logged into."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from logsite.env import env_str


def ensure_superuser() -> dict:
    """Create LOGSITE_ADMIN_USER if no active superuser exists.

    Returns {"created", "username", "password"}; "password" is set only when it was generated
    here, so that the caller can show it once. Only its hash is stored.
    """
    user_model = get_user_model()
    existing = (
        user_model.objects.filter(is_superuser=True, is_active=True)
        .order_by("pk")
        .values_list(user_model.USERNAME_FIELD, flat=True)
        .first()
    )
    if existing is not None:
        return {"created": False, "username": existing, "password": None}
    username = env_str("LOGSITE_ADMIN_USER", "admin")
    given = env_str("LOGSITE_ADMIN_PASSWORD")
    if given:
        try:
            validate_password(given)
        except ValidationError as e:
            raise CommandError("LOGSITE_ADMIN_PASSWORD: " + " ".join(e.messages)) from e
    if user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).exists():
        raise CommandError(
            f"user {username!r} exists but is not an active superuser; make it one "
            "(manage.py shell) or set LOGSITE_ADMIN_USER to another name"
        )
    password = given or secrets.token_urlsafe(18)
    user_model.objects.create_superuser(
        username=username, email=env_str("LOGSITE_ADMIN_EMAIL", ""), password=password
    )
    return {"created": True, "username": username, "password": None if given else password}
