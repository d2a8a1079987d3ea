from django.contrib import admin

from accounts.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "hint", "created_at", "last_used_at")
    readonly_fields = ("hint", "created_at", "last_used_at")

    def has_add_permission(self, request):
        return False  # tokens are issued from the account page, where the clear value is shown once
