"""raincheck's benchmark suite (``make bench``); see docs/benchmarks.rst.

- ``run.py`` drives everything and writes ``results.json``; ``report.py`` turns
  that file into docs/benchmarks.rst's tables and docs/_static/benchmarks.png.
- ``bench_micro.py`` and ``bench_scaling.py`` are pytest-benchmark suites. Each
  runs in a process of its own per peer (``BENCH_PEER``): dj-raincheck and
  raincheck both listen to ``request_finished``, so one process never loads both.
- ``peers.py`` puts every library compared behind one small interface;
  ``http_load.py`` serves ``project/`` with gunicorn and uvicorn and loads it with wrk.
"""
