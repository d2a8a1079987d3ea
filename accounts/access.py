"""Which tenants a user may see or administer. Every query, websocket group, export, API call
and admin page goes through these — the first lock (row-level security was considered as a
second one: docs/decisions/0003-row-level-security.md).

Roles: a `viewer` membership reads the tenant's logs and status; an `admin` membership also
manages the tenant's drivers and multi-line rules. Superusers see and manage everything.
"""

from ingest.models import Membership, Tenant


def visible_tenants(user) -> list[str]:
    """Tenant slugs the user may read. Superusers see every tenant."""
    if not user or not user.is_authenticated:
        return []
    if user.is_superuser:
        return list(Tenant.objects.values_list("slug", flat=True))
    return list(Membership.objects.filter(user=user).values_list("tenant__slug", flat=True))


def admin_tenants(user) -> list[str]:
    """Tenant slugs the user administers (all of them for superusers)."""
    if not user or not user.is_authenticated or not user.is_active:
        return []
    if user.is_superuser:
        return list(Tenant.objects.values_list("slug", flat=True))
    return list(
        Membership.objects.filter(user=user, role=Membership.Role.ADMIN).values_list(
            "tenant__slug", flat=True
        )
    )


def is_tenant_admin(user) -> bool:
    """True for superusers and for anyone with an admin membership somewhere."""
    if not user or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or Membership.objects.filter(user=user, role=Membership.Role.ADMIN).exists()


def can_admin_tenant(user, tenant_slug: str | None) -> bool:
    """Unbound things (tenant None: the frames choose the tenant) belong to superusers only."""
    if not user or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    if tenant_slug is None:
        return False
    return Membership.objects.filter(user=user, tenant__slug=tenant_slug, role=Membership.Role.ADMIN).exists()
