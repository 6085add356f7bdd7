"""A tiny Django project that shows raincheck at work under gunicorn (``make demo``)."""
