"""Admin preview of a multi-line rule against the recent lines of one container.

The rule being edited (saved or not) is run through the same Grouper the pipeline uses, over
the container's newest stored lines, and the resulting records are shown. Stored records that
an earlier rule already joined are split back at their newlines first, which restores the
lines as they arrived. The flush timeout is simulated with the lines' own timestamps.
"""

import re

from django import forms
from django.db import connection
from django.http import Http404
from django.template.response import TemplateResponse

from accounts.access import admin_tenants
from ingest.models import Container, MultilineRule, Tenant
from ingest.multiline import Grouper, Rule
from ingest.multiline_rules import RuleSpec, Selector
from ingest.record import Record
from ingest.store.schema import STREAM_NAMES

DEFAULT_LINES = 200
MAX_LINES = 2000
CANDIDATES = 500


class PreviewForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none())
    match = forms.ChoiceField(choices=MultilineRule.Match.choices, initial=MultilineRule.Match.CONTAINER)
    pattern = forms.CharField(max_length=255, required=False, initial="*")
    start_pattern = forms.CharField(max_length=500)
    max_lines = forms.IntegerField(min_value=1, max_value=100_000, initial=500)
    max_bytes = forms.IntegerField(min_value=256, max_value=16 * 1024 * 1024, initial=64 * 1024)
    flush_timeout_ms = forms.IntegerField(min_value=10, max_value=60_000, initial=1000)
    container = forms.IntegerField(required=False, widget=forms.Select)
    lines = forms.IntegerField(min_value=1, max_value=MAX_LINES, initial=DEFAULT_LINES, required=False)

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = Tenant.objects.filter(slug__in=admin_tenants(user))

    def clean_start_pattern(self):
        value = self.cleaned_data["start_pattern"]
        try:
            re.compile(value)
        except re.error as e:
            raise forms.ValidationError(f"not a valid regular expression: {e}") from None
        return value


def _spec(data) -> RuleSpec:
    return RuleSpec(
        id=0,
        tenant=data["tenant"].slug,
        name="preview",
        match=data["match"],
        pattern=data.get("pattern") or "*",
        start_pattern=data["start_pattern"],
        max_lines=data["max_lines"],
        max_bytes=data["max_bytes"],
        flush_timeout_ms=data["flush_timeout_ms"],
    )


def _as_record(container: Container) -> Record:
    return Record(
        line="",
        tenant=container.tenant,
        service=container.service,
        container_id=container.container_id,
        container_name=container.name,
        image=container.image,
        labels=container.labels or None,
    )


def candidates(spec: RuleSpec) -> list[Container]:
    """The tenant's recently seen containers that the rule's selector picks."""
    selector = Selector(spec)
    recent = Container.objects.filter(tenant=spec.tenant).order_by("-last_seen")[:CANDIDATES]
    return [c for c in recent if selector.selects(_as_record(c))]


def recent_lines(ckey: int, limit: int) -> list[tuple[float, str, str]]:
    """(seconds, stream, line) oldest first; joined records are split back into their lines."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT extract(epoch from ts)::float8, stream, line FROM logs WHERE ckey = %s "
            "ORDER BY ts DESC, id DESC LIMIT %s",
            [ckey, limit],
        )
        rows = cur.fetchall()
    out = []
    for ts, stream, line in reversed(rows):
        out.extend((ts, STREAM_NAMES.get(stream, "stdout"), part) for part in line.split("\n"))
    return out[-limit:]


def group_lines(rule: Rule, container: Container, lines) -> list[list[str]]:
    base = _as_record(container)
    grouper = Grouper(lambda _record: rule)
    out: list[Record] = []
    for ts, stream, line in lines:
        out.extend(grouper.expire(ts))
        record = Record(
            line=line,
            tenant=base.tenant,
            container_id=base.container_id,
            container_name=base.container_name,
            stream=stream,
        )
        out.extend(grouper.feed([record], ts))
    out.extend(grouper.flush_all())
    return [str(r.line).split("\n") for r in out]


def preview_view(request, model_admin):
    if not model_admin.has_view_permission(request):
        raise Http404
    data = request.POST if request.method == "POST" else (request.GET or None)
    form = PreviewForm(data, user=request.user)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Preview a multi-line rule",
        "opts": MultilineRule._meta,
        "form": form,
        "groups": None,
    }
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        spec = _spec(data)
        found = candidates(spec)
        context["candidates"] = found
        chosen = data.get("container")
        if chosen is not None:
            container = next((c for c in found if c.id == chosen), None)
            if container is None:
                # Another tenant's container, or one the selector does not pick: not previewable.
                raise Http404("no such container for this rule")
        else:
            container = found[0] if found else None
        context["container"] = container
        if container is not None:
            lines = recent_lines(container.id, data.get("lines") or DEFAULT_LINES)
            groups = group_lines(spec.compile(), container, lines)
            context.update(groups=groups, line_count=len(lines), record_count=len(groups))
    return TemplateResponse(request, "admin/ingest/multilinerule/preview.html", context)
