from django.urls import path

from search import api, container_logs, tail_page, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("search/", views.search_page, name="search"),
    path("api/v1/search", api.search, name="api-search"),
    path("api/v1/histogram", api.histogram, name="api-histogram"),
    path("api/v1/context", api.context, name="api-context"),
    path("api/v1/export", api.export, name="api-export"),
    path("api/v1/saved-searches", api.saved_searches, name="api-saved-searches"),
    path("api/v1/saved-searches/<int:pk>", api.saved_search, name="api-saved-search"),
    path("api/v1/openapi.json", api.openapi, name="api-openapi"),
    path("tail/", tail_page.tail, name="tail"),
    path("api/v1/containers/<str:container>/logs", container_logs.container_logs, name="container-logs"),
]
