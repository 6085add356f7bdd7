from __future__ import annotations

from django.urls import path

from tests.tasks import views

urlpatterns = [
    path("enqueue/", views.enqueue_view),
    path("enqueue-failing/", views.enqueue_failing_view),
    path("aenqueue/", views.aenqueue_view),
    path("schedule-routed/", views.schedule_routed_view),
    path("schedule-routed-async/", views.schedule_routed_async_view),
    path("schedule-unserialisable/", views.schedule_unserialisable_view),
    path("schedule-then-fail/", views.schedule_then_fail_view),
    path("enqueue-routed/", views.enqueue_routed_view),
]
