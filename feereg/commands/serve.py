"""`feereg serve`: the production server, gunicorn with feereg/gunicorn_conf.py.

Everything is read from the environment (FEEREG_BIND, FEEREG_WORKERS...); the options
override it for this run. The settings are checked here first, so a production server
missing its secret key or database says so before any worker starts.
"""
from __future__ import annotations

import os
import sys

import click
from flask.cli import ScriptInfo

from ..gunicorn_conf import ENVIRONMENT


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on [FEEREG_BIND, default 127.0.0.1:5000].")
@click.option("--port", type=int, default=None, help="Port to listen on [FEEREG_BIND].")
@click.option("--workers", type=int, default=None,
              help="Worker processes [FEEREG_WORKERS or WEB_CONCURRENCY, default 2].")
@click.pass_context
def serve(ctx, host, port, workers):
    """Serve the site with gunicorn (the production server)."""
    from ..config import ConfigError

    try:
        ctx.ensure_object(ScriptInfo).load_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    env = dict(os.environ)
    if host or port:
        bound_host, _, bound_port = (env.get("FEEREG_BIND") or ENVIRONMENT["FEEREG_BIND"]).rpartition(":")
        env["FEEREG_BIND"] = f"{host or bound_host or '127.0.0.1'}:{port or bound_port or 5000}"
    if workers:
        env["FEEREG_WORKERS"] = str(workers)
    address = env.get("FEEREG_BIND") or ENVIRONMENT["FEEREG_BIND"]
    click.echo(f"feereg on http://{address}/" if not address.startswith("unix:") else f"feereg on {address}")
    args = [sys.executable, "-m", "gunicorn", "--config", "python:feereg.gunicorn_conf"]
    os.execvpe(args[0], args, env)


COMMANDS = [serve]
