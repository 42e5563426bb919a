"""Configuration: defaults here, overridden by FEEREG_* environment variables."""
from __future__ import annotations

import json
import os
from pathlib import Path


class Defaults:
    SECRET_KEY = None  # set from FEEREG_SECRET_KEY or an instance file, never a constant
    SQLALCHEMY_DATABASE_URI = None  # default filled in by load_config (instance folder)
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    SEARCH_DIR = None
    #: "whoosh", or "null" for a deployment without search (see feereg/search/).
    SEARCH_BACKEND = "whoosh"
    REDIS_URL = None
    #: Rendered schedule PDFs, keyed by the firm's chain head (feereg/exports/pdf.py);
    #: default: instance/pdf-cache.
    PDF_CACHE_DIR = None
    #: The bulk download of the public registry (feereg/services/bulk_download.py);
    #: default: instance/bulk.
    BULK_DIR = None
    #: A stale bulk download is rebuilt inside the request that finds it stale while the
    #: registry holds at most this many versions; above, in a background thread (and by
    #: `feereg bulk`, e.g. from cron), the previous files being served meanwhile.
    BULK_REBUILD_IN_REQUEST_MAX_VERSIONS = 100_000
    #: The authority in the feeds' tag: ids (RFC 4151): a domain or e-mail address the
    #: operator owned in 2026. Never change it once feeds are read: entries would repeat.
    FEED_TAG_AUTHORITY = "feereg"

    BABEL_DEFAULT_LOCALE = "zh"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = ("zh", "en")

    WTF_CSRF_TIME_LIMIT = None  # a long import preview must not expire mid-review
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True

    #: Uploads: whole request size, and rows per import file.
    MAX_CONTENT_LENGTH = 8 * 1024 * 1024
    IMPORT_MAX_ROWS = 50_000
    #: XLSX is a zip: refuse archives that would inflate beyond this.
    IMPORT_MAX_UNPACKED_BYTES = 100 * 1024 * 1024

    PASSWORD_MIN_LENGTH = 10
    PAGE_SIZE = 50

    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    #: What one client address may ask of the open data API (/api/v1), all endpoints together.
    API_RATE_LIMIT = "300 per minute"

    #: Exchange rates to CNY (CNY per 1 unit), dated: each entry is in force from its date
    #: until the next one (feereg/services/rates.py). Indicative values; an operator sets
    #: the real ones. The older single-dict form {"as_of": ..., "USD": ...} is still read.
    EXCHANGE_RATES = [
        {"from": "2024-01-01", "rates": {"CNY": "1", "USD": "7.10", "HKD": "0.908"}},
        {"from": "2025-01-01", "rates": {"CNY": "1", "USD": "7.30", "HKD": "0.939"}},
        {"from": "2026-11-01", "rates": {"CNY": "1", "USD": "7.12", "HKD": "0.915"}},
    ]

    # Anomaly rules (feereg/services/anomaly_rules.py).
    #: A price increase must be published at least this many days before it takes effect.
    NOTICE_DAYS = 30
    #: Days a firm has to re-publish after a policy notice takes effect before its
    #: disclosure score counts the items as out of date.
    COMPLIANCE_GRACE_DAYS = 30
    #: A rise above this percentage over the previous version is flagged as steep.
    STEEP_RISE_PERCENT = 50
    #: Peer outliers: at least this many other items in the peer group before judging...
    PEER_MIN_COUNT = 5
    #: ...and flagged only when both the amount is at least this multiple of the peer median
    PEER_OUTLIER_RATIO = 3.0
    #: and its distance above the median is at least this many scaled MADs (1.4826 x MAD).
    PEER_OUTLIER_MAD_Z = 5.0
    #: Words that make a disclosure vague rather than a description of the service.
    VAGUE_DISCLOSURE = ("详见附件", "详见", "见附件", "另行通知", "另议", "面议", "see attachment", "tbd")

# Environment variables (FEEREG_<NAME>) that override the defaults; JSON values are parsed.
_ENV_KEYS = {
    "DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "SECRET_KEY": "SECRET_KEY",
    "SEARCH_DIR": "SEARCH_DIR",
    "SEARCH_BACKEND": "SEARCH_BACKEND",
    "REDIS_URL": "REDIS_URL",
    "PDF_CACHE_DIR": "PDF_CACHE_DIR",
    "BULK_DIR": "BULK_DIR",
    "FEED_TAG_AUTHORITY": "FEED_TAG_AUTHORITY",
    "API_RATE_LIMIT": "API_RATE_LIMIT",
    "MAX_CONTENT_LENGTH": "MAX_CONTENT_LENGTH",
    "IMPORT_MAX_ROWS": "IMPORT_MAX_ROWS",
    "SESSION_COOKIE_SECURE": "SESSION_COOKIE_SECURE",
    "EXCHANGE_RATES": "EXCHANGE_RATES",
    "PASSWORD_MIN_LENGTH": "PASSWORD_MIN_LENGTH",
    "NOTICE_DAYS": "NOTICE_DAYS",
    "STEEP_RISE_PERCENT": "STEEP_RISE_PERCENT",
    "PEER_MIN_COUNT": "PEER_MIN_COUNT",
    "PEER_OUTLIER_RATIO": "PEER_OUTLIER_RATIO",
    "PEER_OUTLIER_MAD_Z": "PEER_OUTLIER_MAD_Z",
}


def _parse(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value


def from_environment(environ=os.environ) -> dict:
    found = {}
    for env_name, key in _ENV_KEYS.items():
        if f"FEEREG_{env_name}" in environ:
            raw = environ[f"FEEREG_{env_name}"]
            found[key] = raw if key in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "SEARCH_DIR", "REDIS_URL",
                                                              "SEARCH_BACKEND", "PDF_CACHE_DIR", "BULK_DIR",
                                                              "FEED_TAG_AUTHORITY") else _parse(raw)
    return found


def normalise_database_url(url: str) -> str:
    # "postgresql://" means psycopg 2 to SQLAlchemy; feereg ships psycopg 3.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def instance_secret_key(instance_path: str) -> str:
    """A per-installation random key kept in the instance folder, made on first start."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(os.urandom(32).hex())
        path.chmod(0o600)
    return path.read_text().strip()


def finish(app) -> None:
    """Fill in the defaults that depend on the instance folder."""
    cfg = app.config
    instance = Path(app.instance_path)
    if not cfg.get("SQLALCHEMY_DATABASE_URI"):
        instance.mkdir(parents=True, exist_ok=True)
        cfg["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'feereg.sqlite'}"
    cfg["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(cfg["SQLALCHEMY_DATABASE_URI"])
    if not cfg.get("SEARCH_DIR"):
        cfg["SEARCH_DIR"] = str(instance / "search")
    if not cfg.get("PDF_CACHE_DIR"):
        cfg["PDF_CACHE_DIR"] = str(instance / "pdf-cache")
    if not cfg.get("BULK_DIR"):
        cfg["BULK_DIR"] = str(instance / "bulk")
    if not cfg.get("SECRET_KEY"):
        cfg["SECRET_KEY"] = instance_secret_key(app.instance_path)
    if cfg.get("REDIS_URL") and cfg.get("RATELIMIT_STORAGE_URI", "memory://") == "memory://":
        cfg["RATELIMIT_STORAGE_URI"] = cfg["REDIS_URL"]
