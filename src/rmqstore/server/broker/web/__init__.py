"""The broker's HTTP port: /metrics and the dashboard.

    server.py     the listener (aiohttp) and its routes
    auth.py       who may use the dashboard (admin credentials when ACL is on), CSRF header
    api.py        the dashboard's JSON calls
    snapshot.py   the list pages' one in-process snapshot
    messages.py   message search by id, key and time, traces, DLQ resend
    static/       the page, its script and its style, shipped in the package
"""

from .server import BrokerWeb

__all__ = ["BrokerWeb"]
