from __future__ import annotations

from django.urls import path

from tests.migration import peer_examples

urlpatterns = [
    path("index/", peer_examples.index),
    path("class-based/", peer_examples.IndexView.as_view()),
    path("after-response/", peer_examples.after_response_view),
]
