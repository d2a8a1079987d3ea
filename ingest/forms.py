"""Admin forms for drivers: kind-specific options, bind address, port conflicts, tenant rules."""

import json

from django import forms
from django.utils.html import format_html, format_html_join

from accounts.access import admin_tenants
from ingest import binds, driver_options
from ingest.models import Driver

# Kinds whose senders authenticate with the driver token; the others' protocols carry none.
TOKEN_KINDS = frozenset({"http", "splunk", "journal", "plugin"})


def options_help() -> str:
    rows = []
    for kind, options in driver_options.OPTIONS.items():
        if not options:
            rows.append(format_html("<tr><td>{}</td><td colspan=3>no options</td></tr>", kind))
            continue
        for option in options:
            rows.append(
                format_html(
                    "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    kind,
                    option.name,
                    json.dumps(option.default),
                    option.help,
                )
            )
    return format_html(
        'A JSON object, e.g. <code>{{"rcvhwm": 2000000}}</code>; sizes also as "64k", "16m". '
        "Unknown options are refused.<table><tr><th>kind</th><th>option</th><th>default</th>"
        "<th>meaning</th></tr>{}</table>",
        format_html_join("", "{}", ((r,) for r in rows)),
    )


class OptionsField(forms.JSONField):
    default_error_messages = {"invalid": 'Options must be a JSON object, e.g. {"rcvhwm": 2000000}.'}

    def prepare_value(self, value):
        if value in (None, "", {}):
            return "{}"
        return super().prepare_value(value)


class DriverForm(forms.ModelForm):
    # Set per request by DriverAdmin.get_form: tenant rules depend on who edits.
    current_user = None

    options = OptionsField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text=options_help,
    )

    class Meta:
        model = Driver
        fields = ["name", "kind", "bind", "tenant", "enabled", "options"]
        help_texts = {
            "bind": "zmq: tcp://0.0.0.0:6362 · http, splunk, journal, plugin: 0.0.0.0:8514 · gelf, syslog: "
            "udp://…, tcp://… or host:port for both · fluentd: 0.0.0.0:24224",
        }

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if not kind:
            return data
        self._clean_options(kind, data)
        self._clean_bind(kind, data)
        self._clean_tenant(kind, data)
        return data

    def _clean_options(self, kind: str, data: dict) -> None:
        if "options" not in data:
            return  # invalid JSON, already reported
        try:
            data["options"] = driver_options.clean_options(kind, data.get("options"))
        except driver_options.OptionsError as e:
            for message in e.messages:
                self.add_error("options", message)

    def _clean_bind(self, kind: str, data: dict) -> None:
        bind = data.get("bind")
        if bind is None:
            return
        try:
            binds.endpoints(kind, bind)
        except ValueError as e:
            self.add_error("bind", str(e))
            return
        data["bind"] = bind.strip()
        if not data.get("enabled"):
            return  # a disabled driver opens nothing, so it cannot collide
        others = Driver.objects.filter(enabled=True).exclude(pk=self.instance.pk).select_related("tenant")
        mine = set(admin_tenants(self.current_user)) if self.current_user else set()
        named = {d.name: d for d in others}
        for conflict in binds.conflicts(kind, data["bind"], [(d.name, d.kind, d.bind) for d in others]):
            other = named[conflict.other_name]
            superuser = self.current_user is not None and self.current_user.is_superuser
            if superuser or (other.tenant is not None and other.tenant.slug in mine):
                self.add_error("bind", str(conflict))
            else:  # do not reveal another tenant's driver
                self.add_error("bind", f"{conflict.endpoint} is already used by another enabled driver")

    def _clean_tenant(self, kind: str, data: dict) -> None:
        user = self.current_user
        tenant = data.get("tenant")
        superuser = user is not None and user.is_superuser
        if tenant is None and not superuser:
            self.add_error("tenant", "Choose the tenant this driver's lines belong to.")
        options = data.get("options") or {}
        if not options.get("tenant_label") or superuser:
            return
        allowed = driver_options.tenant_label_allow(options)
        mine = set(admin_tenants(user))
        if not allowed:
            self.add_error(
                "options", "tenant_label needs tenant_label_allow: the tenants a container label may choose"
            )
        elif not set(allowed) <= mine:
            outside = ", ".join(sorted(set(allowed) - mine))
            self.add_error("options", f"tenant_label_allow names tenants you do not administer: {outside}")
