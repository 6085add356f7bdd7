"""The peers' README examples, unchanged but for the import line.

dj-raincheck 0.5.0's README::

    from dj_raincheck import raincheck

    @raincheck
    def send_email(to: str, subject: str, body: str) -> None:
        send_mail(subject, body, 'me@example.com', [to])

    send_email.schedule('customer@example.com', 'Confirm Signup', body)

django-after-response 0.2.2's README::

    import after_response

    @after_response.enable
    def my_email_task(to, subject, body):
        ...

    my_email_task.after_response('customer@example.com', 'Confirm Signup', body)
"""

from __future__ import annotations

from django.core.mail import send_mail
from django.http import HttpRequest, HttpResponse
from django.views import View

# was: from dj_raincheck import raincheck
from raincheck import after_response, raincheck

# was: import after_response  (now imported above from raincheck)

body = "Thanks for signing up."


@raincheck
def send_email(to: str, subject: str, body: str) -> None:
    send_mail(subject, body, "me@example.com", [to])


@after_response.enable
def my_email_task(to, subject, body):  # type: ignore[no-untyped-def]
    send_mail(subject, body, "me@example.com", [to])


# Function-based view example
def index(request: HttpRequest) -> HttpResponse:
    send_email.schedule("customer@example.com", "Confirm Signup", body)
    return HttpResponse("ok")


# Class-based view example
class IndexView(View):
    def get(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        send_email.schedule("customer@example.com", "Confirm Signup", body)
        return HttpResponse("ok")


def after_response_view(request: HttpRequest) -> HttpResponse:
    my_email_task.after_response("customer@example.com", "Confirm Signup", body)
    return HttpResponse("ok")
