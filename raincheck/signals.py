"""Signals sent as jobs run. ``sender`` is always the original, undecorated function.

- ``job_started(sender, args, kwargs)``: a worker (or the caller) starts the job.
- ``job_finished(sender, args, kwargs, duration)``: it returned; ``duration`` in seconds.
- ``job_failed(sender, args, kwargs, exception)``: it raised; already logged.
- ``job_dropped(sender, args, kwargs, reason)``: it was discarded and will never run.
"""

from __future__ import annotations

from django.dispatch import Signal

job_started = Signal()
job_finished = Signal()
job_failed = Signal()
job_dropped = Signal()
