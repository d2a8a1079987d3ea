"""Bearer-token authentication for API requests (CLI, scripts).

A request with `Authorization: Bearer lsu_…` is authenticated as the token's user; CSRF does
not apply to it because no browser cookie is involved. Requests without the header fall
through to the normal session login, so `LoginRequiredMiddleware` protects everything else.
"""

from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from accounts.models import ApiToken
from ingest.models import hash_token

TOKEN_PREFIX = "lsu_"  # noqa: S105 - a prefix, not a secret


def user_for_token(clear: str):
    try:
        token = ApiToken.objects.select_related("user").get(token_hash=hash_token(clear))
    except ApiToken.DoesNotExist:
        return None
    if not token.user.is_active:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user


class ApiTokenMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        scheme, _, clear = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and clear.strip().startswith(TOKEN_PREFIX):
            user = user_for_token(clear.strip())
            if user is not None:
                request.user = SimpleLazyObject(lambda: user)
                request._dont_enforce_csrf_checks = True
                request.api_token = True
        return self.get_response(request)
