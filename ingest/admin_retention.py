"""Admin for retention policies, pins and the maintenance runs' record.

Kept apart from ingest/admin.py so that it stays self-contained; ingest/admin.py imports it.
"""

from django.contrib import admin
from django.utils import timezone

from ingest.models import MaintenanceRun, Pin, RetentionPolicy


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ("__str__", "scope", "tenant", "days", "note", "updated_at")
    list_filter = ("scope", "tenant")
    search_fields = ("service", "container", "label_key", "label_value", "note")
    fields = ("scope", "tenant", "service", "label_key", "label_value", "container", "days", "note")


@admin.register(Pin)
class PinAdmin(admin.ModelAdmin):
    list_display = ("reason", "tenant", "service", "container", "start", "end", "expires_at", "active")
    list_filter = ("tenant",)
    search_fields = ("reason", "service", "container")
    readonly_fields = ("created_by", "created_at")

    @admin.display(boolean=True)
    def active(self, obj: Pin) -> bool:
        return obj.expires_at > timezone.now()

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(MaintenanceRun)
class MaintenanceRunAdmin(admin.ModelAdmin):
    list_display = ("task", "started_at", "finished_at", "ok")
    list_filter = ("task", "ok")
    readonly_fields = [f.name for f in MaintenanceRun._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
