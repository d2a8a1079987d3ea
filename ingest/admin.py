from django.contrib import admin, messages

from ingest import admin_retention  # noqa: F401 - registers retention policies and pins
from ingest.models import Container, Driver, Membership, Tenant


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "created_at")
    search_fields = ("slug", "name")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "tenant", "role")
    list_filter = ("role", "tenant")


@admin.register(Driver)
class DriverAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "bind", "tenant", "enabled", "token_hint")
    list_filter = ("kind", "enabled")
    readonly_fields = ("token_hint",)

    def save_model(self, request, obj, form, change):
        # The clear token exists only in this response; only its hash is stored.
        new_token = None if obj.token_hash else obj.set_new_token()
        super().save_model(request, obj, form, change)
        if new_token:
            messages.warning(request, f"Token for {obj.name} (shown once, copy it now): {new_token}")


@admin.register(Container)
class ContainerAdmin(admin.ModelAdmin):
    list_display = ("tenant", "name", "container_id", "service", "image", "last_seen")
    list_filter = ("tenant",)
    search_fields = ("name", "container_id", "image", "service")
    readonly_fields = [f.name for f in Container._meta.fields]
