"""`feereg backup FILE` and `feereg restore FILE`: the whole registry in a portable archive
(feereg/services/backup.py), from SQLite to PostgreSQL or back."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from ..extensions import db


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@with_appcontext
def backup_command(path):
    """Write every table of the registry to PATH (gzip'd JSON lines with a SHA-256 manifest)."""
    from ..services import backup

    try:
        summary = backup.write_backup(db.engine, Path(path), progress=_progress("dumping"))
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backup: {sum(summary.rows.values()):,} rows of {len(summary.rows)} tables at schema revision "
               f"{summary.revision} -> {summary.path} ({summary.bytes:,} bytes, sha256 {summary.sha256})")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace a registry that already holds data (everything in it is lost).")
@with_appcontext
def restore_command(path, force):
    """Load a backup into this empty, migrated database; then rebuild the search index and verify."""
    from ..services import backup

    try:
        report = backup.restore_backup(db.engine, Path(path), force=force, progress=_progress("restoring"))
    except backup.BackupError as exc:
        raise click.ClickException(f"{exc}; nothing was changed") from None
    click.echo(f"restore: {sum(report.rows.values()):,} rows of {len(report.rows)} tables "
               f"(schema revision {report.revision})")
    backup.finish_restore(report, db.session)
    click.echo(f"reindex: {report.indexed} item spans indexed")
    for problem in report.problems:
        click.echo(f"FAIL {problem}", err=True)
    if report.problems:
        raise click.ClickException(f"{len(report.problems)} problem(s) in the restored hash chains")
    click.echo(f"verify: {report.firms_verified} firm chains intact")


def _progress(verb: str):
    """Rows per table on stderr, a line each hundred thousand rows (a million-item registry
    takes minutes)."""
    done: dict[str, int] = {}

    def progress(table: str, rows: int) -> None:
        before = done.get(table, 0)
        done[table] = before + rows
        if done[table] // 100_000 > before // 100_000:
            click.echo(f"{verb} {table}: {done[table]:,} rows", err=True)

    return progress


COMMANDS = [backup_command, restore_command]
