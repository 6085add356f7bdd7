from __future__ import annotations

from django.urls import path

from tests.app import views

urlpatterns = [
    path("schedule/", views.schedule_view),
    path("schedule-async/", views.schedule_async_view),
    path("fails/", views.failing_view),
    path("explode/", views.explode_view),
    path("status/<int:status>/", views.on_success_view),
    path("status-async/<int:status>/", views.on_success_async_view),
    path("hook/<str:name>/", views.hook_view),
    path("hook-async/<str:name>/", views.hook_async_view),
]
