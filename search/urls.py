from django.urls import path

from search import container_logs, views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("api/v1/containers/<str:container>/logs", container_logs.container_logs, name="container-logs"),
]
