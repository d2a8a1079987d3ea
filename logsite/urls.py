from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("accounts.urls")),
    path("", include("ingest.urls")),
    path("storage/", include("ingest.storage_urls")),
    path("", include("search.urls")),
    path("", include("forward.urls")),
]
