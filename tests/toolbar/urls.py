"""The demo project's URLs: its page, a ping for the harness, and the toolbar's own."""

from __future__ import annotations

from debug_toolbar.toolbar import debug_toolbar_urls
from django.urls import path

from tests.toolbar import views

urlpatterns = [
    path("ping/", views.ping),
    path("signup/", views.signup),
    *debug_toolbar_urls(),
]
