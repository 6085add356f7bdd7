from __future__ import annotations

import os
import tempfile

SECRET_KEY = "raincheck-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "raincheck",
    "tests.app",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": ":memory:",
        # A file, not SQLite's in-memory database: worker threads need their own
        # connections to the same database, and Django ignores close() on an
        # in-memory one, so connection hygiene could not be observed.
        "TEST": {
            "NAME": os.path.join(tempfile.gettempdir(), f"raincheck-tests-{os.getpid()}.sqlite3")
        },
    }
}
ROOT_URLCONF = "tests.app.urls"
MIDDLEWARE: list[str] = []
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
