from django.urls import path

from search import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
]
