"""The account page: memberships, and API tokens for the CLI (shown once, then only a hint)."""

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import ApiToken
from ingest.models import Membership

MAX_TOKENS = 50


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. laptop CLI or prometheus.")


def account(request):
    user = request.user
    form = TokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        if user.api_tokens.count() >= MAX_TOKENS:
            form.add_error(None, f"At most {MAX_TOKENS} tokens; revoke one first.")
        else:
            _token, new_token = ApiToken.issue(user, form.cleaned_data["name"])
            form = TokenForm()
    response = render(
        request,
        "accounts/account.html",
        {
            "form": form,
            "new_token": new_token,
            "tokens": user.api_tokens.order_by("-created_at"),
            "memberships": Membership.objects.filter(user=user)
            .select_related("tenant")
            .order_by("tenant__slug"),
        },
    )
    if new_token:
        # The clear token is in this response only: keep it out of caches and history.
        response["Cache-Control"] = "no-store"
    return response


@require_POST
def revoke_token(request, token_id: int):
    deleted, _ = ApiToken.objects.filter(pk=token_id, user=request.user).delete()
    if not deleted:
        raise Http404("no such token")
    messages.success(request, "The token is revoked.")
    return redirect("account")
