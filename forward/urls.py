from django.urls import path

from forward import views

urlpatterns = [
    path("forward/status", views.status, name="forward-status"),
    path("api/v1/forward/status", views.status_json, name="forward-status-json"),
]
