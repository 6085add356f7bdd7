from __future__ import annotations

from django.urls import path

from demo import views

urlpatterns = [
    path("health", views.health),
    path("signup", views.signup),
    path("burst", views.burst),
    path("batch", views.batch),
    path("stats", views.stats),
]
