"""The `feereg` command group. Commands call services; they never repeat their logic."""
from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import date
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import func, select

from .extensions import db


def _create_app():
    from . import create_app
    from .config import ConfigError

    try:
        return create_app()
    except ConfigError as exc:  # a setting to fix, said plainly: not a traceback
        raise click.ClickException(str(exc)) from None


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True, add_version_option=False)
def main():
    """feereg: the port fee disclosure registry."""


def _actor_admin():
    """The operator account the CLI acts as: a transient admin with no id (recorded as the system)."""
    from .models import User

    return User(id=None, email="cli@localhost", role="admin", password_hash="!")


def register_commands(app: Flask) -> None:
    for command in (catalog, demo, import_file, verify, create_user, firm_status, i18n, reindex, scan, bulk):
        app.cli.add_command(command)
    app.cli.add_command(token)  # the open data API's tokens
    from .commands import all_commands

    for command in all_commands():
        app.cli.add_command(command)


@click.group("catalog")
def catalog():
    """The standard fee catalog."""


@catalog.command("load")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False), default=None)
@with_appcontext
def catalog_load(path):
    """Insert or update the fee catalog from its CSV (the shipped one by default)."""
    from .services.catalog import CATALOG_FILE, load_catalog

    added, updated = load_catalog(db.session, Path(path) if path else CATALOG_FILE)
    db.session.commit()
    click.echo(f"catalog: {added} added, {updated} updated")


@click.command("demo")
@click.option("--firms", type=int, default=None, help="Number of firms (default 679, or items/6 when larger).")
@click.option("--items", type=int, default=3751, show_default=True)
@click.option("--seed", type=int, default=20261123, show_default=True)
@click.option("--if-empty", is_flag=True, help="Do nothing when the registry already holds firms.")
@click.option("--planted", type=click.Path(dir_okay=False), default=None,
              help="Write the planted irregularities to this JSON file.")
@with_appcontext
def demo(firms, items, seed, if_empty, planted):
    """Load the generated, clearly labelled synthetic demo registry."""
    from .demo.generator import generate
    from .models import Firm

    if db.session.scalar(select(func.count()).select_from(Firm)):
        if if_empty:
            click.echo("demo: the registry already holds firms; nothing loaded")
            return
        raise click.ClickException("the registry already holds firms; use a fresh database")
    import time

    firms = firms or max(679, items // 6)
    with click.progressbar(length=items, label="demo items", file=sys.stderr, show_pos=True) as bar:
        def phase(name):  # the bar's label names the step under way
            bar.label = f"demo items: {name:<8}"
            bar.render_progress()

        report = generate(db.session, firms=firms, items=items, seed=seed, progress=bar.update,
                          planted_path=planted, phase=phase)
    # Committing runs what follows any bulk load: the anomaly scan, the search index
    # rebuild (by its backend) and marking the bulk download stale.
    click.echo("demo: loaded; committing, then the anomaly scan and the search index", err=True)
    started = time.perf_counter()
    db.session.commit()
    click.echo(f"demo: {report.firms} firms, {report.items} items, {report.versions} versions, "
               f"{len(report.planted)} planted irregularities in {report.seconds:.1f} s "
               f"({report.items / max(report.seconds, 1e-9):,.0f} items/s); "
               f"scan and index after commit {time.perf_counter() - started:.1f} s")
    click.echo("demo logins (password demo-password-1): " + ", ".join(report.users))


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--effective-from", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Effective date for rows without one (default: today).")
@click.option("--dry-run", is_flag=True, help="Validate and show the preview; write nothing.")
@click.option("--allow-backdate", is_flag=True, help="Accept past effective dates (loading historic schedules).")
@with_appcontext
def import_file(path, effective_from, dry_run, allow_backdate):
    """Import a firms or fee items file (CSV or XLSX) as the operator: all rows or none."""
    from .services import imports

    content = Path(path).read_bytes()
    actor = _actor_admin()
    default = effective_from.date() if effective_from else None
    preview = imports.preview_file(db.session, Path(path).name, content, actor, default, allow_backdate)
    for note in preview.notes:
        click.echo(f"note: {note}")
    if not preview.ok:
        for error in preview.errors:
            click.echo(f"error: {error}", err=True)
        db.session.rollback()
        raise click.ClickException(f"{len(preview.errors)} error(s); nothing was imported")
    counts = preview.counts
    click.echo(f"{preview.kind}: {counts['new']} new, {counts['changed']} changed, {counts['unchanged']} unchanged")
    if dry_run:
        db.session.rollback()
        click.echo("dry run: nothing written")
        return
    imports.apply_preview(db.session, preview, actor, allow_backdate=allow_backdate)
    db.session.commit()
    click.echo("imported")


@click.command("verify")
@click.option("--bulk", "bulk_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Check a bulk download's files instead of the database (offline).")
@with_appcontext
def verify(bulk_dir):
    """Check every firm's hash chain; name each firm and version that fails."""
    from .models import Firm

    if bulk_dir:
        from . import verify_bulk

        if verify_bulk.main([bulk_dir]):
            raise click.ClickException("the bulk download does not verify")
        return
    from .services.history import verify_all

    total = db.session.scalar(select(func.count()).select_from(Firm)) or 0
    with click.progressbar(length=total, label="verifying firms", file=sys.stderr) as bar:
        checked, problems = verify_all(db.session, progress=bar.update)
    for problem in problems:
        click.echo(f"FAIL {problem}", err=True)
    if problems:
        raise click.ClickException(f"{len(problems)} problem(s) in {len({p.firm_id for p in problems})} firm(s)")
    click.echo(f"verify: {checked} firm chains intact")


@click.command("create-user")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(["regulator", "admin", "publisher"]), required=True)
@click.option("--firm", "firm_code", default=None, help="Credit code of the firm (publishers only).")
@click.option("--name", default="")
@click.option("--password", default=None, help="Read from FEEREG_PASSWORD or asked for when omitted.")
@with_appcontext
def create_user(email, role, firm_code, name, password):
    """Create a user account (regulators and admins are created only this way)."""
    from .services import accounts, firms
    from .services.errors import ServiceError

    firm = None
    if firm_code:
        firm = firms.find_by_credit_code(db.session, firm_code)
        if firm is None:
            raise click.ClickException(f"no firm with credit code {firm_code}")
    password = password or os.environ.get("FEEREG_PASSWORD")
    if not password:
        password = getpass.getpass("password: ")
    try:
        user = accounts.create_user(db.session, email, password, role, firm, name=name, actor=_actor_admin())
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"created {user.role} {user.email}")


@click.command("firm-status")
@click.argument("credit_code")
@click.argument("status", type=click.Choice(["suspended", "active"]))
@click.option("--reason", default="", help="Shown on the firm's pages while suspended.")
@with_appcontext
def firm_status(credit_code, status, reason):
    """Suspend a firm (it cannot publish; its pages say so) or reinstate it."""
    from .services import firms

    firm = firms.find_by_credit_code(db.session, credit_code)
    if firm is None:
        raise click.ClickException(f"no firm with credit code {credit_code}")
    if status == "suspended" and not reason:
        raise click.ClickException("give --reason for a suspension")
    firms.set_status(db.session, firm, status, reason, _actor_admin())
    db.session.commit()
    click.echo(f"{firm.credit_code} {firm.name_zh}: {status}")


@click.group("i18n")
def i18n():
    """Message catalogs for the user interface."""


@i18n.command("compile")
@click.option("--force", is_flag=True)
def i18n_compile(force):
    """Compile the .po catalogs to the .mo files gettext reads (done by make install)."""
    from .i18n import compile_catalogs

    done = compile_catalogs(force=force)
    click.echo("compiled: " + (", ".join(done) if done else "nothing out of date"))


@click.command("reindex")
@with_appcontext
def reindex():
    """Rebuild the search index from the database (repairs a missing or stale index)."""
    from .models import FeeItem
    from .search import get_backend

    backend = get_backend()
    total = db.session.scalar(select(func.count()).select_from(FeeItem)) or 0
    with click.progressbar(length=total, label="indexing items", file=sys.stderr) as bar:
        count = backend.rebuild(progress=bar.update)
    click.echo(f"reindex: {count} item spans indexed ({backend.name})")


@click.command("bulk")
@click.option("--if-stale", is_flag=True, help="Only when the registry changed since the last build (for cron).")
@with_appcontext
def bulk(if_stale):
    """Regenerate the bulk download (CSV, JSON Lines, manifest) of the public registry."""
    import time

    from .services import bulk_download

    started = time.perf_counter()
    manifest = bulk_download.rebuild(if_stale=if_stale)
    if manifest is None:
        click.echo("bulk: up to date; nothing built")
        return
    counts = manifest["counts"]
    click.echo(f"bulk: {counts['firms']} firms, {counts['items']} items in force on {manifest['current_on']}, "
               f"{counts['versions']} versions in {time.perf_counter() - started:.1f} s "
               f"-> {bulk_download.BulkStore.from_config().current_dir()}")
    for entry in manifest["files"]:
        click.echo(f"  {entry['name']:<16} {entry['bytes']:>14,} bytes  {entry['sha256']}")


@click.command("scan")
@with_appcontext
def scan():
    """Run every anomaly rule on every live item; open, reopen or resolve flags."""
    from .models import FeeItem
    from .services import checks

    total = db.session.scalar(select(func.count()).select_from(FeeItem)) or 0
    with click.progressbar(length=total, label="checking items", file=sys.stderr) as bar:
        report = checks.full_scan(db.session, _actor_admin(), progress=bar.update)
    db.session.commit()
    found = ", ".join(f"{rule} {count}" for rule, count in sorted(report.found.items())) or "nothing"
    click.echo(f"scan: {report.items} items ({report.live} live) in {report.seconds:.1f} s; found: {found}")
    click.echo(f"flags: {report.raised} raised, {report.reopened} reopened, {report.resolved} resolved")


@click.group("token")
def token():
    """API tokens for the regulator endpoints of the open data API."""


@token.command("create")
@click.option("--email", required=True, help="The regulator the token acts as.")
@click.option("--name", required=True, help="What will use it, e.g. 'weekly audit script'.")
@with_appcontext
def token_create(email, name):
    """Issue a token to a regulator and print it: it is shown this once and never stored."""
    from .services import accounts, api_tokens
    from .services.errors import ServiceError

    user = accounts.find_by_email(db.session, email)
    if user is None:
        raise click.ClickException(f"no account with e-mail {email}")
    try:
        row, clear = api_tokens.create_token(db.session, user, name, actor=_actor_admin())
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"token {row.id} '{row.name}' for {user.email} (shown once; keep it secret):", err=True)
    click.echo(clear)


@token.command("list")
@click.option("--email", required=True)
@with_appcontext
def token_list(email):
    """A user's tokens: id, name, created, last used, revoked."""
    from .services import accounts, api_tokens

    user = accounts.find_by_email(db.session, email)
    if user is None:
        raise click.ClickException(f"no account with e-mail {email}")
    for row in api_tokens.tokens_of(db.session, user):
        used = row.last_used_at.isoformat(timespec="seconds") if row.last_used_at else "never"
        state = f"revoked {row.revoked_at.isoformat(timespec='seconds')}" if row.revoked_at else "active"
        click.echo(f"{row.id}\t{row.name}\tcreated {row.created_at.isoformat(timespec='seconds')}\t"
                   f"last used {used}\t{state}")


@token.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
def token_revoke(token_id):
    """Revoke a token by its id (see `feereg token list`)."""
    from .models import ApiToken
    from .services import api_tokens

    row = db.session.get(ApiToken, token_id)
    if row is None:
        raise click.ClickException(f"no token {token_id}")
    api_tokens.revoke_token(db.session, row, _actor_admin())
    db.session.commit()
    click.echo(f"token {row.id} '{row.name}' revoked")
