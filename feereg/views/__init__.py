"""One blueprint per audience."""
from flask import Flask


def register_blueprints(app: Flask) -> None:
    from . import account, admin, api, public, publisher, regulator
    # A big audience's pages come in several modules, each adding its routes to that
    # audience's blueprint: search, compare and quote, complaints and invoices, cases.
    from . import public_audit, public_compare, public_search, publisher_audit, regulator_cases  # noqa: F401
    from . import public_exports, regulator_exports  # noqa: F401  (PDF, CSV and XLSX downloads)
    from . import public_data, public_feeds  # noqa: F401  (bulk download and Atom feeds)
    from . import api_public, api_regulator, public_api_docs, regulator_tokens  # noqa: F401  (open data API)

    app.register_blueprint(public.bp)
    app.register_blueprint(account.bp, url_prefix="/account")
    app.register_blueprint(publisher.bp, url_prefix="/publisher")
    app.register_blueprint(regulator.bp, url_prefix="/regulator")
    app.register_blueprint(admin.bp, url_prefix="/admin")
    app.register_blueprint(api.bp, url_prefix="/api/v1")
