"""The demo page whose jobs the browser test finds in the toolbar's raincheck panel."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from tests.toolbar.jobs import index_document, refresh_recommendations, send_welcome_email

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Welcome</title></head>
<body><h1>Welcome aboard</h1><p>Your account is ready.</p></body></html>
"""


def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse("pong", content_type="text/plain")


def signup(request: HttpRequest) -> HttpResponse:
    """Schedule what a sign-up would: an email, a unique refresh (twice), a big argument."""
    send_welcome_email.schedule(42, subject="Welcome aboard")
    refresh_recommendations.schedule(42)
    refresh_recommendations.schedule(42)
    index_document.schedule({"title": "About me", "body": "Lorem ipsum dolor sit amet. " * 40})
    return HttpResponse(PAGE)
