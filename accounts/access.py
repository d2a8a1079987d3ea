"""Which tenants a user may see. Every query, websocket group, export and API call goes
through `visible_tenants` — the first lock; row-level security can be the second."""

from ingest.models import Membership, Tenant


def visible_tenants(user) -> list[str]:
    """Tenant slugs the user may read. Superusers see every tenant."""
    if not user or not user.is_authenticated:
        return []
    if user.is_superuser:
        return list(Tenant.objects.values_list("slug", flat=True))
    return list(Membership.objects.filter(user=user).values_list("tenant__slug", flat=True))


def can_admin_tenant(user, tenant_slug: str) -> bool:
    if user.is_superuser:
        return True
    return Membership.objects.filter(user=user, tenant__slug=tenant_slug, role=Membership.Role.ADMIN).exists()
