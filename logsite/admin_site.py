"""The admin site, opened to tenant admins as well as staff.

Django's admin lets in only `is_staff` users. Tenant admins (an `admin` membership) must manage
their own tenant's drivers and multi-line rules without becoming staff, so the site also lets
them in; what they can see there is decided by each ModelAdmin (ingest/admin_scoping.py), and
models without such scoping keep Django's permission checks, under which a tenant admin who is
not staff has no permissions at all.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class LogsiteAdminSite(admin.AdminSite):
    site_header = "Logsite administration"
    site_title = "Logsite admin"

    def has_permission(self, request):
        from accounts.access import is_tenant_admin  # models are not loaded when this module is

        user = request.user
        return user.is_active and (user.is_staff or is_tenant_admin(user))


class LogsiteAdminConfig(AdminConfig):
    default_site = "logsite.admin_site.LogsiteAdminSite"
