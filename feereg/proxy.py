"""Behind reverse proxies: trust their X-Forwarded-* headers, as many hops as configured.

Rate limits and the audit log key on the client's address. Behind a proxy every request
comes from the proxy's address, so one busy office would exhaust everyone's allowance;
trusting X-Forwarded-For without a proxy lets anyone pick their own address. So werkzeug's
ProxyFix is installed only when PROXY_FIX_X_FOR (and its siblings) say how many proxies in
front of the application set each header: it then takes the address that many hops from the
end, which no client can forge.
"""
from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

HEADERS = ("for", "proto", "host", "port", "prefix")


def init_app(app: Flask) -> None:
    hops = {name: int(app.config.get(f"PROXY_FIX_X_{name.upper()}", 0) or 0) for name in HEADERS}
    if any(hops.values()):
        app.wsgi_app = ProxyFix(app.wsgi_app, **{f"x_{name}": n for name, n in hops.items()})
