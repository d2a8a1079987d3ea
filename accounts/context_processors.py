from django.utils.functional import SimpleLazyObject

from accounts.access import is_tenant_admin


def roles(request):
    """`can_admin` for the navigation: staff or a tenant admin (queried only when used)."""
    user = getattr(request, "user", None)
    return {"can_admin": SimpleLazyObject(lambda: bool(user and (user.is_staff or is_tenant_admin(user))))}
