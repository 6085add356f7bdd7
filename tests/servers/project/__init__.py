"""A small Django project served by the real servers in tests/servers.

Nothing here imports the test code: the server processes import only this
package and raincheck. Jobs, views and the WSGI/ASGI wrappers report what they
did through :mod:`tests.servers.project.events`.
"""
