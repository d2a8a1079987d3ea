from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from ingest import admin_retention  # noqa: F401 - registers retention policies and pins
from ingest.admin_scoping import TenantScopedAdmin
from ingest.forms import TOKEN_KINDS, DriverForm
from ingest.models import Container, Driver, Membership, MultilineRule, Tenant
from ingest.multiline_preview import preview_view


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "created_at")
    search_fields = ("slug", "name")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "tenant", "role")
    list_filter = ("role", "tenant")


def _token_page(request, admin_site, driver, token, action):
    """The only response that ever contains the clear token: rendered, never redirected, so it
    does not travel through the session or a messages cookie, and marked not to be cached."""
    context = {
        **admin_site.each_context(request),
        "title": f"Token for {driver.name}",
        "driver": driver,
        "token": token,
        "action": action,
        "opts": Driver._meta,
        "connect_url": reverse("driver-connect", args=[driver.pk]),
        "change_url": reverse("admin:ingest_driver_change", args=[driver.pk]),
    }
    response = TemplateResponse(request, "admin/ingest/driver/token.html", context)
    response["Cache-Control"] = "no-store"
    return response


@admin.register(Driver)
class DriverAdmin(TenantScopedAdmin, admin.ModelAdmin):
    form = DriverForm
    list_display = ("name", "kind", "bind", "tenant", "enabled", "token_state", "connect_link")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "bind")
    readonly_fields = ("token_hint",)
    fields = ("name", "kind", "bind", "tenant", "enabled", "options", "token_hint")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"current_user": request.user})

    @admin.display(description="token")
    def token_state(self, obj):
        if obj.kind not in TOKEN_KINDS:
            return "—"
        return obj.token_hint or "revoked"

    @admin.display(description="")
    def connect_link(self, obj):
        return format_html('<a href="{}">connect a container</a>', reverse("driver-connect", args=[obj.pk]))

    def render_change_form(self, request, context, *args, **kwargs):
        context["token_kinds"] = sorted(TOKEN_KINDS)
        return super().render_change_form(request, context, *args, **kwargs)

    def save_model(self, request, obj, form, change):
        # The clear token exists only in the response to this request; only its hash is stored.
        request._new_driver_token = None
        if obj.kind in TOKEN_KINDS and not obj.token_hash and not change:
            request._new_driver_token = obj.set_new_token()
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        token = getattr(request, "_new_driver_token", None)
        if token:
            return _token_page(request, self.admin_site, obj, token, "created")
        return super().response_add(request, obj, post_url_continue)

    def get_urls(self):
        own = [
            path(
                "<path:object_id>/rotate-token/",
                self.admin_site.admin_view(self.rotate_token_view),
                name="ingest_driver_rotate_token",
            ),
            path(
                "<path:object_id>/revoke-token/",
                self.admin_site.admin_view(self.revoke_token_view),
                name="ingest_driver_revoke_token",
            ),
        ]
        return own + super().get_urls()

    def _driver_for_action(self, request, object_id) -> Driver:
        driver = self.get_object(request, object_id)
        if driver is None:
            raise Http404("no such driver")
        if not self.has_change_permission(request, driver):
            raise PermissionDenied
        if driver.kind not in TOKEN_KINDS:
            raise Http404(f"{driver.kind} drivers have no token")
        return driver

    def _confirm(self, request, driver, action, explanation):
        context = {
            **self.admin_site.each_context(request),
            "title": f"{action.capitalize()} the token of {driver.name}?",
            "driver": driver,
            "action": action,
            "explanation": explanation,
            "opts": Driver._meta,
            "change_url": reverse("admin:ingest_driver_change", args=[driver.pk]),
        }
        return TemplateResponse(request, "admin/ingest/driver/token_confirm.html", context)

    def rotate_token_view(self, request, object_id):
        driver = self._driver_for_action(request, object_id)
        if request.method != "POST":
            return self._confirm(
                request,
                driver,
                "rotate",
                "A new token replaces the current one at once: senders still using the old token "
                "are refused (401) until they are given the new one.",
            )
        token = driver.set_new_token()
        driver.save()  # post_save tells ingest; the receiver restarts with the new hash
        self.log_change(request, driver, "Rotated the token.")
        return _token_page(request, self.admin_site, driver, token, "rotated")

    def revoke_token_view(self, request, object_id):
        driver = self._driver_for_action(request, object_id)
        if request.method != "POST":
            return self._confirm(
                request,
                driver,
                "revoke",
                "Every sender using this driver is refused (401) from now on, and the Docker plugin "
                "can no longer read logs back with it. Rotate later to issue a new token.",
            )
        driver.token_hash = ""
        driver.token_hint = ""
        driver.save()
        self.log_change(request, driver, "Revoked the token.")
        messages.success(request, f"The token of {driver.name} is revoked.")
        return HttpResponseRedirect(reverse("admin:ingest_driver_change", args=[driver.pk]))


@admin.register(MultilineRule)
class MultilineRuleAdmin(TenantScopedAdmin, admin.ModelAdmin):
    list_display = ("name", "tenant", "match", "pattern", "start_pattern", "enabled", "position")
    list_filter = ("enabled", "match")
    list_editable = ("enabled", "position")
    search_fields = ("name", "pattern")
    change_form_template = "admin/ingest/multilinerule/change_form.html"

    def get_urls(self):
        own = [
            path(
                "preview/",
                self.admin_site.admin_view(lambda request: preview_view(request, self)),
                name="ingest_multilinerule_preview",
            ),
        ]
        return own + super().get_urls()


@admin.register(Container)
class ContainerAdmin(admin.ModelAdmin):
    list_display = ("tenant", "name", "container_id", "service", "image", "last_seen")
    list_filter = ("tenant",)
    search_fields = ("name", "container_id", "image", "service")
    readonly_fields = [f.name for f in Container._meta.fields]
