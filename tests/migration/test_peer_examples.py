"""Moving from dj-raincheck or django-after-response changes one import line."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client, override_settings

from raincheck.testing import wait_idle

pytestmark = [
    pytest.mark.urls("tests.migration.urls"),
    # Django 6.1 asks for settings.MAILERS; the peers' READMEs predate it.
    pytest.mark.filterwarnings("ignore:Django 2028 will not have a default mailer"),
]

# pytest-django routes mail to django.core.mail.outbox (the locmem backend).


@pytest.mark.parametrize("path", ["/index/", "/class-based/", "/after-response/"])
def test_peer_readme_example_sends_its_email(path: str) -> None:
    """The peers' README views, run unchanged but for the import, send their email once."""
    response = Client().get(path)
    wait_idle()
    assert response.status_code == 200
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["customer@example.com"], "Confirm Signup")
    ]


@override_settings(RAINCHECK_IMMEDIATE=True)
def test_dj_raincheck_immediate_setting_keeps_its_meaning() -> None:
    """``RAINCHECK_IMMEDIATE`` runs the job inside the view, as in dj-raincheck."""
    from tests.migration.peer_examples import send_email

    send_email.schedule("customer@example.com", "Confirm Signup", "now")
    assert len(mail.outbox) == 1


@override_settings(RAINCHECK_RUN_ASYNC=False)
def test_dj_raincheck_run_async_setting_keeps_its_meaning() -> None:
    """``RAINCHECK_RUN_ASYNC = False`` runs the jobs in the request's thread, at its end."""
    Client().get("/index/")
    assert len(mail.outbox) == 1


def test_after_response_enable_rejects_non_callables() -> None:
    """``after_response.enable`` on something that is not callable is a TypeError."""
    from raincheck import after_response

    with pytest.raises(TypeError, match="decorates a function"):
        after_response.enable(42)  # type: ignore[arg-type]
