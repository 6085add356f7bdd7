from __future__ import annotations

from django.urls import path

from benchmarks.project import views

urlpatterns = [
    path("none/", views.no_jobs),
    path("scheduled/", views.scheduled),
    path("inline/", views.inline),
    path("cpu/", views.cpu),
    path("async/none/", views.async_no_jobs),
    path("async/scheduled/", views.async_scheduled),
    path("async/tasks/", views.async_on_servers_loop),
]
