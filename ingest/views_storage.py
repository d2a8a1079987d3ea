"""The storage page: what the logs take, per tenant, container and day, and what the next
retention run would remove. Superusers see every tenant; others only their own tenants'
containers (accounts.access.visible_tenants), and of each day only their share."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from accounts.access import visible_tenants
from ingest.models import MaintenanceRun
from ingest.storage_stats import storage_report

TASKS = ("apply_retention", "seal_partitions", "create_partitions_ahead", "expire_containers", "prune_ledger")


@login_required
def storage(request):
    report = storage_report(visible_tenants(request.user), all_tenants=request.user.is_superuser)
    runs = []
    if request.user.is_superuser:  # run summaries name days and containers of every tenant
        for task in TASKS:
            run = MaintenanceRun.objects.filter(task=task).order_by("-started_at").first()
            if run is not None:
                runs.append(run)
    return render(request, "ingest/storage.html", {"report": report, "runs": runs})
