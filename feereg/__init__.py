"""feereg: a port fee disclosure registry."""
from __future__ import annotations

from pathlib import Path

from flask import Flask

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    _configure(app, config)
    _bind_extensions(app)
    _register_blueprints(app)
    _register_cli(app)
    _register_hooks(app)
    return app


def _configure(app: Flask, config: dict | None) -> None:
    from . import config as cfg

    app.config.from_object(cfg.Defaults)
    app.config.from_pyfile("feereg.cfg", silent=True)
    app.config.update(cfg.from_environment())
    if config:
        app.config.update(config)
    cfg.finish(app)
    from . import proxy

    proxy.init_app(app)  # client addresses through trusted reverse proxies (PROXY_FIX_*)


def _bind_extensions(app: Flask) -> None:
    from . import i18n
    from .extensions import babel, csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True,
                     compare_type=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale,
                   default_translation_directories=str(Path(__file__).parent / "translations"))
    i18n.install_template_gettext(app)
    limiter.init_app(app)


def _register_blueprints(app: Flask) -> None:
    from .web import use_row_ids

    use_row_ids(app)
    from .views import jobs, register_blueprints

    register_blueprints(app)
    app.register_blueprint(jobs.bp, url_prefix="/jobs")
    from .views import health

    app.register_blueprint(health.bp)  # /healthz for load balancers


def _register_cli(app: Flask) -> None:
    from .cli import register_commands

    register_commands(app)


def _register_hooks(app: Flask) -> None:
    from . import search, web
    from .services import bulk_download, checks

    web.init_app(app)
    search.init_app(app)
    from . import cache, http_cache

    cache.init_app(app)  # Redis shared by every worker and server, when configured
    http_cache.init_app(app)  # ETags and 304s for public pages (after web: the language is known)
    checks.register()  # anomaly rules on every publish, and a full scan after a bulk load
    bulk_download.register()  # the bulk download marked stale after a publish or a bulk load
