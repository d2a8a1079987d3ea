"""Admin forms: write-only secrets and the replay action's time."""

from django import forms

from forward.models import Target

# Model field -> form field that replaces it. The stored value is never put into the page.
SECRET_FIELDS = {
    "cls_secret_id": "new_cls_secret_id",
    "cls_secret_key": "new_cls_secret_key",
    "tls_client_key": "new_tls_client_key",
}


class TargetForm(forms.ModelForm):
    new_cls_secret_id = forms.CharField(
        required=False, label="CLS SecretId", widget=forms.PasswordInput(render_value=False), strip=True
    )
    new_cls_secret_key = forms.CharField(
        required=False, label="CLS SecretKey", widget=forms.PasswordInput(render_value=False), strip=True
    )
    new_tls_client_key = forms.CharField(
        required=False,
        label="TLS client key (PEM)",
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        strip=True,
    )

    class Meta:
        model = Target
        # The secrets are not editable model fields: they come in through the new_* fields below.
        fields = (
            "name",
            "kind",
            "tenant",
            "service",
            "container",
            "query",
            "template",
            "enabled",
            "paused",
            "pause_reason",
            "batch_lines",
            "batch_bytes",
            "batch_wait_ms",
            "cls_region",
            "cls_endpoint",
            "cls_topic_id",
            "syslog_url",
            "syslog_max_bytes",
            "tls_ca",
            "tls_verify",
            "tls_server_name",
            "tls_client_cert",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        hints = self.instance.secret_hints() if self.instance.pk else {}
        for model_field, form_field in SECRET_FIELDS.items():
            hint = hints.get(model_field)
            self.fields[form_field].widget.attrs["autocomplete"] = "new-password"
            self.fields[form_field].help_text = (
                f"Stored ({hint}). Leave empty to keep it; type a new value to replace it."
                if hint
                else "Not set."
            )
        # The widget must never carry the stored value, whatever a template does with it.
        self.initial.pop("new_tls_client_key", None)

    def clean(self):
        data = super().clean()
        for model_field, form_field in SECRET_FIELDS.items():
            value = data.get(form_field)
            if value:
                setattr(self.instance, model_field, value)
        if data.get("kind") == Target.Kind.CLS and not (
            self.instance.cls_secret_id and self.instance.cls_secret_key
        ):
            self.add_error("new_cls_secret_key", "A CLS target needs a SecretId and a SecretKey.")
        if data.get("tls_client_cert") and not self.instance.tls_client_key:
            self.add_error("new_tls_client_key", "A client certificate needs its key.")
        return data


class ReplayForm(forms.Form):
    since = forms.DateTimeField(
        label="Replay lines from (UTC)",
        help_text="Every stored line of the selected targets with a time at or after this is sent again "
        "(at least once). A time later than a target's cursor skips ahead instead.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}),
    )
