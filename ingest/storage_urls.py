from django.urls import path

from ingest import views_storage

urlpatterns = [
    path("", views_storage.storage, name="storage"),
]
