"""raincheck and Django's Tasks framework.

- ``backend``: ``RaincheckBackend``, a Tasks backend that runs tasks after the
  response on raincheck's pool (public as ``raincheck.backends.RaincheckBackend``).
- ``routing``: ``RAINCHECK_TASKS_BACKEND``, which sends ``@raincheck`` jobs to a
  Tasks backend instead; ``routed``, the stable names of those jobs' Tasks.
- ``framework``, ``arguments``, ``results``: the framework raincheck found
  (``django.tasks`` or the ``django-tasks`` backport), JSON argument checks,
  and the in-memory results of ``RaincheckBackend``.

Importing this package needs no Tasks framework; importing its modules does.
"""
