"""Signals sent as jobs run. ``sender`` is always the original, undecorated function.

- ``job_scheduled(sender, args, kwargs, destination, function)``: ``.schedule()`` (or a
  ``RaincheckBackend`` enqueue) reached ``schedule()``; sent only while it has
  receivers, which close the direct path (``raincheck.announce`` says what is sent).
- ``job_started(sender, args, kwargs)``: a worker (or the caller) starts the job.
- ``job_finished(sender, args, kwargs, duration)``: it returned; ``duration`` in seconds.
- ``job_failed(sender, args, kwargs, exception)``: it raised; already logged.
- ``job_dropped(sender, args, kwargs, reason)``: it was discarded and will never run.
"""

from __future__ import annotations

from django.dispatch import Signal

job_scheduled = Signal()
job_started = Signal()
job_finished = Signal()
job_failed = Signal()
job_dropped = Signal()
