"""`feereg cache clear`: renew the public pages' validators after the database was changed
behind the application's back (SQL by hand), so no browser or proxy keeps
calling an old page current. Every commit through feereg renews them by itself."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


@click.group("cache")
def cache():
    """The cache shared by every server (Redis)."""


@cache.command("clear")
@with_appcontext
def cache_clear():
    """Renew the registry state behind the pages' ETags (needs FEEREG_REDIS_URL)."""
    from ..cache import CacheUnavailable
    from ..http_cache import cache_clear as renew

    try:
        renewed = renew(current_app)
    except CacheUnavailable as exc:
        raise click.ClickException(f"Redis did not answer: {exc}") from None
    if renewed:
        click.echo("cache: the pages' validators are renewed on every server")
    else:
        click.echo("cache: no Redis configured; the pages' validators follow the database by themselves")


COMMANDS = [cache]
