"""ModelAdmin mixin for things that belong to one tenant (drivers, multi-line rules).

Superusers manage all of them; tenant admins only those of the tenants they administer; a
viewer, or a staff user without an admin membership, none. Django's per-model permissions are
not consulted for these models: the tenant role is the permission. Objects outside the user's
tenants are left out of the queryset, so the admin answers "does not exist" for them, exactly
as for an id that was never used.
"""

from accounts.access import admin_tenants, can_admin_tenant, is_tenant_admin


class TenantScopedAdmin:
    tenant_field = "tenant"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.tenant_field}__slug__in": admin_tenants(request.user)})

    def _object_tenant(self, obj):
        tenant = getattr(obj, self.tenant_field)
        return tenant.slug if tenant is not None else None

    def _allowed(self, request, obj=None) -> bool:
        if obj is None:
            return is_tenant_admin(request.user)
        return can_admin_tenant(request.user, self._object_tenant(obj))

    def has_module_permission(self, request):
        return is_tenant_admin(request.user)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_add_permission(self, request):
        return is_tenant_admin(request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == self.tenant_field and not request.user.is_superuser:
            from ingest.models import Tenant

            kwargs["queryset"] = Tenant.objects.filter(slug__in=admin_tenants(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
