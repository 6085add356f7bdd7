"""Settings of the demo project the browser test serves: the toolbar with raincheck's panel.

The toolbar lines are the ones docs/observability.rst tells a user to copy.
"""

from __future__ import annotations

from debug_toolbar.settings import PANELS_DEFAULTS

SECRET_KEY = "raincheck-toolbar-tests"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INTERNAL_IPS = ["127.0.0.1"]
USE_TZ = True
INSTALLED_APPS = ["django.contrib.staticfiles", "raincheck", "debug_toolbar"]
MIDDLEWARE = ["debug_toolbar.middleware.DebugToolbarMiddleware"]
ROOT_URLCONF = "tests.toolbar.urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
STATIC_URL = "static/"
DATABASES: dict[str, object] = {}

DEBUG_TOOLBAR_PANELS = [*PANELS_DEFAULTS, "raincheck.contrib.debug_toolbar.RaincheckPanel"]
# Collapsed to its handle, as a page opens for a user who hid it: the test clicks it.
DEBUG_TOOLBAR_CONFIG = {"SHOW_COLLAPSED": True}
RAINCHECK_DRAIN_ON_SIGTERM = True  # the harness stops the server with SIGTERM
