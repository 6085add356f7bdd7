"""The Django project the benchmarks run: in-process, and under gunicorn and uvicorn."""
