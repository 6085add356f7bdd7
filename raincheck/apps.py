from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class RaincheckConfig(AppConfig):
    name = "raincheck"
    verbose_name = "raincheck"

    def ready(self) -> None:
        # Importing the decorators wires the request_started/request_finished
        # receivers. No thread starts here: the pool is created on first use,
        # after any fork the server does (FACTS.md §2).
        import raincheck.decorators  # noqa: F401
        from raincheck.checks import check_settings

        checks.register(check_settings)
