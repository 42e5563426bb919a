"""/healthz: can this server serve? For load balancers and monitoring.

JSON, open to anyone, never rate-limited (a balancer polls often, from one address) and
never cached. 200 while the database answers. Redis down is "degraded", still 200: the
site serves without it (rate limits count per worker, pages go without validators), and a
balancer that took every server out because their shared Redis was away would turn a
degradation into an outage. 503 when the database does not answer.

It says which component failed, never how (no host names, no connection strings).
"""
from __future__ import annotations

import time

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..cache import CacheUnavailable, shared_cache
from ..extensions import db, limiter

bp = Blueprint("health", __name__)
limiter.exempt(bp)


@bp.get("/healthz")
def healthz():
    database = _timed(lambda: db.session.execute(text("SELECT 1")).scalar_one())
    if not database["ok"]:
        db.session.rollback()
    cache = shared_cache()
    redis = {"ok": None, "configured": False} if cache is None else {"configured": True, **_timed(cache.ping)}
    if not database["ok"]:
        status = "down"
    elif redis["ok"] is False:
        status = "degraded"
    else:
        status = "ok"
    response = jsonify(status=status, database=database, redis=redis)
    response.status_code = 503 if status == "down" else 200
    response.headers["Cache-Control"] = "no-store"
    return response


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        check()
    except (SQLAlchemyError, CacheUnavailable) as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
