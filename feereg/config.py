"""Configuration: defaults here, overridden by FEEREG_* environment variables."""
from __future__ import annotations

import json
import os
from pathlib import Path


class Defaults:
    #: "production" refuses to start without the settings several servers must share
    #: (check_production below); anything else is a development or test set-up.
    ENVIRONMENT = "development"
    #: How many application servers share the database (1: this one alone). Above 1,
    #: production needs Redis and a search backend that lives in the database.
    SERVERS = 1
    SECRET_KEY = None  # set from FEEREG_SECRET_KEY or an instance file, never a constant
    SQLALCHEMY_DATABASE_URI = None  # default filled in by load_config (instance folder)
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    SEARCH_DIR = None
    #: "whoosh", or "null" for a deployment without search (see feereg/search/).
    SEARCH_BACKEND = "whoosh"
    #: Whoosh's writer lock: seconds a write waits for another process's write.
    SEARCH_WRITER_TIMEOUT = 5.0
    #: Redis, shared by every worker of every server: rate limits and the shared cache
    #: (feereg/cache.py). None: limits count per worker and pages revalidate against the database.
    REDIS_URL = None
    #: Prefix of every Redis key feereg writes, so two deployments can share one Redis.
    REDIS_PREFIX = "feereg"
    #: Seconds to wait for Redis before serving without it (a down Redis never stops the site).
    REDIS_TIMEOUT = 0.5
    #: Seconds a browser or proxy may reuse a public page without asking again; it then
    #: revalidates with its ETag (feereg/http_cache.py). 0: revalidate every time.
    HTTP_CACHE_MAX_AGE = 60
    #: Reverse proxies in front of the application that set each X-Forwarded-* header
    #: (werkzeug's ProxyFix): 0 trusts none. Client addresses (rate limits, audit) come from
    #: X-Forwarded-For only when PROXY_FIX_X_FOR counts the proxies that append to it.
    PROXY_FIX_X_FOR = 0
    PROXY_FIX_X_PROTO = 0
    PROXY_FIX_X_HOST = 0
    PROXY_FIX_X_PORT = 0
    PROXY_FIX_X_PREFIX = 0
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
    #: Cookies only over https. Browsers treat http://127.0.0.1 and http://localhost as secure,
    #: so `make run` works as it is; plain http on any other address (a LAN address, or Safari)
    #: needs FEEREG_SESSION_COOKIE_SECURE=false, for development only (feereg/web.py then
    #: also drops the __Host- prefix, which browsers accept only on a Secure cookie).
    SESSION_COOKIE_SECURE = True
    #: __Host-: the browser accepts it only from https (or localhost), for this host, path /.
    SESSION_COOKIE_NAME = "__Host-feereg"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    #: Set-Cookie only when the session changes (feereg/login_sessions.py re-signs it at most
    #: once a minute for the idle clock), never on every response, static files included.
    SESSION_REFRESH_EACH_REQUEST = False
    REMEMBER_COOKIE_SECURE = True
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    #: A login lasts at most this many seconds, and ends after SESSION_IDLE_TIMEOUT seconds
    #: without a request (feereg/login_sessions.py).
    PERMANENT_SESSION_LIFETIME = 12 * 3600
    SESSION_IDLE_TIMEOUT = 2 * 3600
    #: Strict-Transport-Security sent on https responses; "" sends none.
    HSTS = "max-age=31536000"

    #: Uploads: whole request size, and rows per import file.
    MAX_CONTENT_LENGTH = 8 * 1024 * 1024
    IMPORT_MAX_ROWS = 50_000
    #: XLSX is a zip: refuse archives that would inflate beyond this.
    IMPORT_MAX_UNPACKED_BYTES = 100 * 1024 * 1024

    PASSWORD_MIN_LENGTH = 10
    PAGE_SIZE = 50

    RATELIMIT_STORAGE_URI = "memory://"  # Redis when REDIS_URL is set (finish below)
    RATELIMIT_HEADERS_ENABLED = True
    #: Redis down: each worker counts in memory until it is back (limits loosen by the
    #: number of workers, they do not vanish), and no request fails because of it.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True
    #: What one client address may ask of the open data API (/api/v1), all endpoints together.
    API_RATE_LIMIT = "300 per minute"
    #: Per client address: login attempts (and password changes); per account, the e-mail
    #: typed, known or not (the lock-out after 5 failures is on top); firm registrations.
    LOGIN_RATE_LIMIT = "10 per minute; 60 per hour"
    LOGIN_ACCOUNT_RATE_LIMIT = "20 per hour"
    REGISTER_RATE_LIMIT = "10 per hour"
    #: Per client address, the pages that cost CPU: search (page and downloads), comparisons
    #: (page and downloads), shipment quotes (page and PDF).
    SEARCH_RATE_LIMIT = "60 per minute"
    COMPARE_RATE_LIMIT = "60 per minute"
    QUOTE_RATE_LIMIT = "30 per minute"
    #: Complaints filed, and any post of the complaint or invoice-check forms.
    COMPLAINT_RATE_LIMIT = "10 per hour; 3 per minute"
    FORM_RATE_LIMIT = "30 per minute"

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

    # Long work as jobs (feereg/services/jobs.py).
    #: Files the jobs make (PDFs), one folder per job; default: instance/jobs. With several
    #: servers, a directory they share, so any of them can serve the download.
    JOBS_DIR = None
    #: Web processes run the jobs they start in a thread (a single server needs nothing
    #: more); False leaves every job to `feereg jobs work` processes.
    JOBS_RUN_IN_WEB = True
    #: Job threads one web process runs at once; more jobs wait in the queue.
    JOBS_WEB_THREADS = 2
    #: A running job's worker writes a heartbeat this often...
    JOB_HEARTBEAT_SECONDS = 5
    #: ...and a job whose heartbeat is older than this is taken over: its worker died.
    JOB_STALE_SECONDS = 120
    #: Tries before a job whose workers keep dying is marked failed.
    JOB_MAX_ATTEMPTS = 3
    #: Files with more rows than this are checked and imported as a job.
    IMPORT_JOB_ROWS = 2000
    #: Audit report PDFs with more flags than this are made as a job...
    REPORT_PDF_JOB_ROWS = 2000
    #: ...listing at most this many (beyond, the CSV is the tool; the PDF says so). Every
    #: laid-out page is held until the file is written: about 450 MB at 5,000 flags.
    REPORT_PDF_MAX_ROWS = 10000

# --- the environment ------------------------------------------------------------------
#
# Every setting an operator may need is read from an environment variable FEEREG_<NAME>,
# so a deployment never edits a file; .env.example lists them all, and
# tests/test_config_env.py holds the two lists and Defaults together. A value is read as
# the type of its default: text as is, numbers and true/false parsed, lists as JSON. An
# empty value counts as unset, so a blank line copied from .env.example changes nothing.

class ConfigError(RuntimeError):
    """A setting that feereg cannot start with; the message names the variable."""


#: FEEREG_<NAME> -> the setting it overrides.
_ENV_KEYS = {
    "ENV": "ENVIRONMENT",
    "SERVERS": "SERVERS",
    "DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "SECRET_KEY": "SECRET_KEY",
    "SEARCH_DIR": "SEARCH_DIR",
    "SEARCH_BACKEND": "SEARCH_BACKEND",
    "SEARCH_WRITER_TIMEOUT": "SEARCH_WRITER_TIMEOUT",
    "REDIS_URL": "REDIS_URL",
    "REDIS_PREFIX": "REDIS_PREFIX",
    "REDIS_TIMEOUT": "REDIS_TIMEOUT",
    "HTTP_CACHE_MAX_AGE": "HTTP_CACHE_MAX_AGE",
    "PROXY_FIX_X_FOR": "PROXY_FIX_X_FOR",
    "PROXY_FIX_X_PROTO": "PROXY_FIX_X_PROTO",
    "PROXY_FIX_X_HOST": "PROXY_FIX_X_HOST",
    "PROXY_FIX_X_PORT": "PROXY_FIX_X_PORT",
    "PROXY_FIX_X_PREFIX": "PROXY_FIX_X_PREFIX",
    "PDF_CACHE_DIR": "PDF_CACHE_DIR",
    "BULK_DIR": "BULK_DIR",
    "BULK_REBUILD_IN_REQUEST_MAX_VERSIONS": "BULK_REBUILD_IN_REQUEST_MAX_VERSIONS",
    "FEED_TAG_AUTHORITY": "FEED_TAG_AUTHORITY",
    "API_RATE_LIMIT": "API_RATE_LIMIT",
    "MAX_CONTENT_LENGTH": "MAX_CONTENT_LENGTH",
    "IMPORT_MAX_ROWS": "IMPORT_MAX_ROWS",
    "IMPORT_MAX_UNPACKED_BYTES": "IMPORT_MAX_UNPACKED_BYTES",
    "PAGE_SIZE": "PAGE_SIZE",
    "SESSION_COOKIE_SECURE": "SESSION_COOKIE_SECURE",
    "SESSION_LIFETIME": "PERMANENT_SESSION_LIFETIME",
    "SESSION_IDLE_TIMEOUT": "SESSION_IDLE_TIMEOUT",
    "HSTS": "HSTS",
    "LOGIN_RATE_LIMIT": "LOGIN_RATE_LIMIT",
    "LOGIN_ACCOUNT_RATE_LIMIT": "LOGIN_ACCOUNT_RATE_LIMIT",
    "REGISTER_RATE_LIMIT": "REGISTER_RATE_LIMIT",
    "SEARCH_RATE_LIMIT": "SEARCH_RATE_LIMIT",
    "COMPARE_RATE_LIMIT": "COMPARE_RATE_LIMIT",
    "QUOTE_RATE_LIMIT": "QUOTE_RATE_LIMIT",
    "COMPLAINT_RATE_LIMIT": "COMPLAINT_RATE_LIMIT",
    "FORM_RATE_LIMIT": "FORM_RATE_LIMIT",
    "EXCHANGE_RATES": "EXCHANGE_RATES",
    "PASSWORD_MIN_LENGTH": "PASSWORD_MIN_LENGTH",
    "NOTICE_DAYS": "NOTICE_DAYS",
    "COMPLIANCE_GRACE_DAYS": "COMPLIANCE_GRACE_DAYS",
    "STEEP_RISE_PERCENT": "STEEP_RISE_PERCENT",
    "PEER_MIN_COUNT": "PEER_MIN_COUNT",
    "PEER_OUTLIER_RATIO": "PEER_OUTLIER_RATIO",
    "PEER_OUTLIER_MAD_Z": "PEER_OUTLIER_MAD_Z",
    "VAGUE_DISCLOSURE": "VAGUE_DISCLOSURE",
    "JOBS_DIR": "JOBS_DIR",
    "JOBS_RUN_IN_WEB": "JOBS_RUN_IN_WEB",
    "JOBS_WEB_THREADS": "JOBS_WEB_THREADS",
    "JOB_HEARTBEAT_SECONDS": "JOB_HEARTBEAT_SECONDS",
    "JOB_STALE_SECONDS": "JOB_STALE_SECONDS",
    "JOB_MAX_ATTEMPTS": "JOB_MAX_ATTEMPTS",
    "IMPORT_JOB_ROWS": "IMPORT_JOB_ROWS",
    "REPORT_PDF_JOB_ROWS": "REPORT_PDF_JOB_ROWS",
    "REPORT_PDF_MAX_ROWS": "REPORT_PDF_MAX_ROWS",
}

#: Settings in Defaults deliberately not read from the environment, and why. A new
#: setting goes in _ENV_KEYS or here (a test says so).
NOT_FROM_ENVIRONMENT = {
    "SQLALCHEMY_ENGINE_OPTIONS": "engine behaviour the code relies on (pre-ping after a database restart)",
    "BABEL_DEFAULT_LOCALE": "Chinese is the registry's language; English is the other choice, per visitor",
    "BABEL_DEFAULT_TIMEZONE": "effective dates are Shenzhen dates throughout (services.registry.LOCAL_TZ)",
    "LANGUAGES": "the languages the shipped translations cover",
    "WTF_CSRF_TIME_LIMIT": "security behaviour, not a deployment choice",
    "SESSION_COOKIE_HTTPONLY": "security behaviour, not a deployment choice",
    "SESSION_COOKIE_SAMESITE": "security behaviour, not a deployment choice",
    "REMEMBER_COOKIE_HTTPONLY": "security behaviour, not a deployment choice",
    "SESSION_COOKIE_NAME": "follows FEEREG_SESSION_COOKIE_SECURE (feereg/web.py)",
    "SESSION_REFRESH_EACH_REQUEST": "security behaviour, not a deployment choice",
    "REMEMBER_COOKIE_SECURE": "follows FEEREG_SESSION_COOKIE_SECURE (feereg/web.py)",
    "REMEMBER_COOKIE_SAMESITE": "security behaviour, not a deployment choice",
    "RATELIMIT_STORAGE_URI": "follows FEEREG_REDIS_URL (finish below)",
    "RATELIMIT_HEADERS_ENABLED": "clients are told their allowance; not a choice",
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": "how the site survives a Redis outage; decided, see Defaults",
    "RATELIMIT_SWALLOW_ERRORS": "how the site survives a Redis outage; decided, see Defaults",
}

ENVIRONMENTS = ("development", "production")


def environment_variables() -> list[str]:
    """Every FEEREG_* variable the application reads (the server's own are in gunicorn_conf)."""
    return [f"FEEREG_{name}" for name in _ENV_KEYS]


def _default_of(key: str):
    from flask import Flask

    return getattr(Defaults, key, Flask.default_config.get(key))


def _typed(name: str, key: str, raw: str):
    default = _default_of(key)
    variable = f"FEEREG_{name}"
    if isinstance(default, bool):
        word = raw.strip().lower()
        if word in ("1", "true", "yes", "on"):
            return True
        if word in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{variable}={raw!r}: expected true or false")
    if isinstance(default, int):
        try:
            return int(raw.strip())
        except ValueError:
            raise ConfigError(f"{variable}={raw!r}: expected a whole number") from None
    if isinstance(default, float):
        try:
            return float(raw.strip())
        except ValueError:
            raise ConfigError(f"{variable}={raw!r}: expected a number") from None
    if isinstance(default, (list, tuple, dict)):
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"{variable}: not valid JSON ({exc})") from None
        if not isinstance(value, (list, dict)):
            raise ConfigError(f"{variable}: expected a JSON list or object, got {type(value).__name__}")
        return tuple(value) if isinstance(default, tuple) and isinstance(value, list) else value
    return raw


def from_environment(environ=os.environ) -> dict:
    found = {}
    for name, key in _ENV_KEYS.items():
        raw = environ.get(f"FEEREG_{name}", "")
        if raw.strip():
            found[key] = _typed(name, key, raw)
    return found


def check_production(cfg) -> list[str]:
    """What a production deployment lacks, each naming its variable; [] when ready. Called
    before the development defaults (instance-folder database and key) are filled in."""
    problems = []
    servers = cfg.get("SERVERS", 1)
    if not cfg.get("SESSION_COOKIE_SECURE", True):
        problems.append("FEEREG_SESSION_COOKIE_SECURE=false is for plain-http development: in production the "
                        "session cookie is Secure (browsers and clients send it to the loopback over http too)")
    if not cfg.get("SECRET_KEY"):
        problems.append("FEEREG_SECRET_KEY is not set: sessions and forms are signed with it, and every "
                        "server must use the same one (make one with: python3 -c 'import secrets; "
                        "print(secrets.token_hex(32))')")
    url = cfg.get("SQLALCHEMY_DATABASE_URI") or ""
    if not url:
        problems.append("FEEREG_DATABASE_URL is not set: production runs on PostgreSQL "
                        "(postgresql://user:password@host:5432/feereg), not a SQLite file in the instance folder")
    if servers > 1:
        if not cfg.get("REDIS_URL"):
            problems.append(f"FEEREG_REDIS_URL is not set but FEEREG_SERVERS={servers}: rate limits and page "
                            "validators must be shared by every server (redis://host:6379/0)")
        if url.startswith("sqlite"):
            problems.append(f"FEEREG_DATABASE_URL is SQLite but FEEREG_SERVERS={servers}: a SQLite file serves "
                            "one machine; several servers share PostgreSQL")
        if cfg.get("SEARCH_BACKEND") == "whoosh":
            problems.append(f"FEEREG_SEARCH_BACKEND=whoosh but FEEREG_SERVERS={servers}: Whoosh keeps its index "
                            "in a directory on each machine, updated only by the server that published; "
                            "use the backend that lives in the database (postgres)")
    return problems


def check(cfg) -> None:
    environment = cfg.get("ENVIRONMENT", "development")
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"FEEREG_ENV={environment!r}: expected one of {', '.join(ENVIRONMENTS)}")
    if not isinstance(cfg.get("SERVERS", 1), int) or cfg.get("SERVERS", 1) < 1:
        raise ConfigError(f"FEEREG_SERVERS={cfg.get('SERVERS')!r}: expected a whole number, at least 1")
    if environment == "production":
        problems = check_production(cfg)
        if problems:
            raise ConfigError("feereg will not start with FEEREG_ENV=production:\n" +
                              "\n".join(f"  - {p}" for p in problems))


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
    """Check the settings, then fill in the defaults that depend on the instance folder."""
    cfg = app.config
    check(cfg)
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
    cfg["JOBS_DIR"] = str(cfg.get("JOBS_DIR") or instance / "jobs")
    if not cfg.get("SECRET_KEY"):
        cfg["SECRET_KEY"] = instance_secret_key(app.instance_path)
    if cfg.get("REDIS_URL") and cfg.get("RATELIMIT_STORAGE_URI", "memory://") == "memory://":
        cfg["RATELIMIT_STORAGE_URI"] = cfg["REDIS_URL"]
        # A Redis that does not answer must cost a request half a second at most, not a TCP timeout.
        cfg.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": cfg["REDIS_TIMEOUT"],
                                                     "socket_timeout": cfg["REDIS_TIMEOUT"]})
    cfg.setdefault("RATELIMIT_KEY_PREFIX", cfg["REDIS_PREFIX"])
