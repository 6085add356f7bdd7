"""docs/observability.rst's ``sentry_sdk.init()``, as the test project runs it.

settings.py imports this when ``$RAINCHECK_TEST_OBSERVE`` is ``sentry-logging`` or
``sentry-recipe``. The one change from the page (checked by
tests/test_observability_docs.py): a DSN that names no real host and a transport
that keeps every event in this process, appending it to the server's
``sentry.jsonl`` for the test to read. Nothing is ever sent.
"""

from __future__ import annotations

import json
import os

import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.transport import Transport

from tests.servers.project.events import test_dir

EVENTS_FILE = "sentry.jsonl"
# With the transport below, this DSN is never connected to.
DSN = "http://key@127.0.0.1:9/1"


class CollectingTransport(Transport):
    """Appends each event of an envelope, as Sentry would have received it, to a file."""

    def capture_envelope(self, envelope: Envelope) -> None:
        for item in envelope.items:
            if item.type != "event":
                continue
            event = json.loads(item.payload.get_bytes())
            line = (json.dumps(event, sort_keys=True) + "\n").encode()
            # One write on an O_APPEND file: the events of concurrent jobs never interleave.
            fd = os.open(test_dir() / EVENTS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)


sentry_sdk.init(
    dsn=DSN,
    integrations=[DjangoIntegration()],
    transport=CollectingTransport,
)
