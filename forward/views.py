"""Forwarding status: per-target lag, last error and pause reason, for the user's tenants."""

from django.http import JsonResponse
from django.shortcuts import render

from accounts.access import visible_tenants
from forward.lag import forward_lag


def _rows(request):
    return forward_lag(visible_tenants(request.user))


def status(request):
    return render(request, "forward/status.html", {"targets": _rows(request)})


def status_json(request):
    return JsonResponse({"targets": [row.as_dict() for row in _rows(request)]})
