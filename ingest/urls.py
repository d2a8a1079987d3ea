from django.urls import path

from ingest import views

urlpatterns = [
    path("status/", views.status_page, name="status"),
    path("api/v1/status", views.status_api, name="status-api"),
    path("drivers/<int:driver_id>/connect/", views.connect_page, name="driver-connect"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
]
