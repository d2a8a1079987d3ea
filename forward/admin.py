from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html

from forward import lag as lags
from forward import state as states
from forward.forms import ReplayForm, TargetForm
from forward.models import ForwardState, Target
from ingest.admin_scoping import TenantScopedAdmin


def _lag_by_id() -> dict[int, lags.TargetLag]:
    return {row.target_id: row for row in lags.forward_lag()}


@admin.register(Target)
class TargetAdmin(TenantScopedAdmin, admin.ModelAdmin):
    # Superusers see every target; a tenant admin only those of the tenants they administer.
    form = TargetForm
    list_display = ("name", "kind", "tenant", "enabled", "status", "lag_lines", "lag_seconds", "lines_sent")
    list_filter = ("kind", "enabled", "paused", "tenant")
    search_fields = ("name", "service", "container", "cls_topic_id", "syslog_url")
    readonly_fields = ("status_detail", "paused_at")
    actions = ("replay_from_time", "resume", "pause")
    fieldsets = (
        (None, {"fields": ("name", "kind", "tenant", "enabled", "status_detail")}),
        ("Which lines", {"fields": ("service", "container", "query", "template")}),
        ("Batching", {"fields": ("batch_lines", "batch_bytes", "batch_wait_ms")}),
        (
            "Tencent Cloud CLS",
            {
                "fields": (
                    "cls_region",
                    "cls_endpoint",
                    "cls_topic_id",
                    "new_cls_secret_id",
                    "new_cls_secret_key",
                )
            },
        ),
        (
            "syslog drain",
            {
                "fields": (
                    "syslog_url",
                    "syslog_max_bytes",
                    "tls_verify",
                    "tls_server_name",
                    "tls_ca",
                    "tls_client_cert",
                    "new_tls_client_key",
                )
            },
        ),
        ("Paused", {"fields": ("paused", "pause_reason", "paused_at")}),
    )

    def get_queryset(self, request):
        self._lag = _lag_by_id()
        return super().get_queryset(request).select_related("tenant")

    def _lag_of(self, obj) -> lags.TargetLag | None:
        lag = getattr(self, "_lag", None)
        if lag is None or obj.pk not in lag:
            self._lag = lag = _lag_by_id()
        return lag.get(obj.pk)

    @admin.display(description="status")
    def status(self, obj):
        row = self._lag_of(obj)
        if obj.paused:
            return format_html('<span title="{}">paused: {}</span>', obj.pause_reason, obj.pause_reason[:80])
        if not obj.enabled:
            return "disabled"
        if row and row.failures:
            return format_html(
                '<span title="{}">retrying ({}): {}</span>', row.last_error, row.failures, row.last_error[:80]
            )
        return "ok"

    @admin.display(description="lag (lines)")
    def lag_lines(self, obj):
        row = self._lag_of(obj)
        return row.lag_lines if row else None

    @admin.display(description="lag (s)")
    def lag_seconds(self, obj):
        row = self._lag_of(obj)
        return round(row.lag_seconds, 1) if row else None

    @admin.display(description="lines sent")
    def lines_sent(self, obj):
        row = self._lag_of(obj)
        return row.lines_sent if row else None

    @admin.display(description="forwarding status")
    def status_detail(self, obj):
        if not obj.pk:
            return "-"
        row = self._lag_of(obj)
        if row is None:
            return "-"
        return format_html(
            "lag: {} lines, {} s · sent: {} lines (last at {}) · failures in a row: {} · next attempt: {}"
            "<br>last error ({}): {}<br>pause reason: {}",
            row.lag_lines,
            round(row.lag_seconds, 1),
            row.lines_sent,
            row.last_sent_at or "never",
            row.failures,
            row.next_attempt_at or "now",
            row.last_error_at or "-",
            row.last_error or "-",
            obj.pause_reason or "-",
        )

    @admin.action(description="Replay from a time…")
    def replay_from_time(self, request, queryset):
        if "apply" in request.POST:
            form = ReplayForm(request.POST)
            if form.is_valid():
                since = form.cleaned_data["since"]
                for target in queryset:
                    states.replay_from(target, since)
                self.message_user(
                    request,
                    f"{queryset.count()} target(s) will replay lines from {since:%Y-%m-%d %H:%M:%S} UTC.",
                )
                return None
        else:
            form = ReplayForm()
        context = {
            **self.admin_site.each_context(request),
            "title": "Replay forwarded lines",
            "form": form,
            "targets": queryset,
            "action": "replay_from_time",
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "forward/replay.html", context)

    @admin.action(description="Resume (clear the pause)")
    def resume(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        n = queryset.update(paused=False, pause_reason="", paused_at=None)
        ForwardState.objects.filter(target_id__in=ids).update(failures=0, next_attempt_at=None)
        self.message_user(request, f"{n} target(s) resumed.", messages.SUCCESS)

    @admin.action(description="Pause")
    def pause(self, request, queryset):
        n = queryset.update(paused=True, pause_reason="paused by an admin")
        self.message_user(request, f"{n} target(s) paused.", messages.SUCCESS)
