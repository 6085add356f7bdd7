"""docs/observability.rst's OpenTelemetry setup, as the test project's wsgi.py and asgi.py run it.

Imported, before Django builds its middleware chain, when ``$RAINCHECK_TEST_OBSERVE``
is ``otel``. The one change from the page (checked by
tests/test_observability_docs.py): spans go to an in-memory exporter, which
``spans()`` (the ``/spans/`` view) reads, instead of an OTLP collector.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from opentelemetry import trace
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()

provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
DjangoInstrumentor().instrument()


def spans(request: HttpRequest) -> JsonResponse:
    """Every span the exporter holds: ids in hex, the parent's id, kind and attributes."""
    found = []
    for span in exporter.get_finished_spans():
        context = span.get_span_context()
        assert context is not None
        found.append(
            {
                "name": span.name,
                "kind": span.kind.name,
                "trace_id": f"{context.trace_id:032x}",
                "span_id": f"{context.span_id:016x}",
                "parent_id": None if span.parent is None else f"{span.parent.span_id:016x}",
                "attributes": {key: str(value) for key, value in (span.attributes or {}).items()},
            }
        )
    return JsonResponse({"spans": found})
