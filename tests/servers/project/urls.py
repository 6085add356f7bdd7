from __future__ import annotations

from django.urls import path

from tests.servers.project import observability, views

urlpatterns = [
    path("ping/", views.ping),
    path("quick/", views.quick),
    path("hold/", views.hold),
    path("release/", views.release),
    path("quick-async/", views.quick_async),
    path("hold-async/", views.hold_async),
    path("naps/", views.naps),
    path("fail/", views.fail),
    path("respond/", views.respond),
    path("abandoned/", views.abandoned),
    path("waits/", views.waits),
    path("db-jobs/", views.db_jobs),
    path("on-commit/", views.on_commit),
    path("db-report/", views.db_report),
    path("shutdown/", views.shutdown),
    path("sleepy/", views.sleepy),
    path("query/", views.query),
    path("observe/<str:tag>/", observability.observe),
    path("observe-async/<str:tag>/", observability.observe_async),
    path("spans/", observability.spans),
]
