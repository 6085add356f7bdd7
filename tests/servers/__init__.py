"""Integration tests that boot real servers (gunicorn, uvicorn) on 127.0.0.1."""
