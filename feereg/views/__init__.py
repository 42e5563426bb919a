"""One blueprint per audience."""
from flask import Flask


def register_blueprints(app: Flask) -> None:
    from . import account, admin, api, public, public_search, publisher, regulator  # noqa: F401 - adds routes

    from . import public_compare  # noqa: F401 - adds the compare and quote routes to public.bp
    from . import public_audit, publisher_audit, regulator_cases  # noqa: F401 - complaints, invoices, cases

    app.register_blueprint(public.bp)
    app.register_blueprint(account.bp, url_prefix="/account")
    app.register_blueprint(publisher.bp, url_prefix="/publisher")
    app.register_blueprint(regulator.bp, url_prefix="/regulator")
    app.register_blueprint(admin.bp, url_prefix="/admin")
    app.register_blueprint(api.bp, url_prefix="/api/v1")
