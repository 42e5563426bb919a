"""Backup and restore at scale: time, archive size and peak memory of `feereg backup` and
`feereg restore` on a generated registry.

    .venv/bin/python benchmarks/backup_bench.py [--items 100000] [--database-url URL]
        [--target-url URL] [--target-search whoosh|null] [--keep]

1. a source registry: a fresh SQLite file loaded with `feereg demo --items N` (search off),
   or --database-url, a registry already loaded;
2. `feereg backup` to a file in a temporary folder;
3. `feereg restore` of that file into a fresh database: SQLite, or PostgreSQL when
   --target-url names an admin URL (a database feereg_backup_bench_<pid> is made there,
   migrated, and dropped at the end unless --keep);

Each command runs as a process of its own; its peak resident memory is read from the
kernel (getrusage of the finished child), so the figures show whether a command holds
the registry in memory (it must not: both stream a row at a time). The load average is
printed: other work on the machine stretches the times.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FEEREG = str(ROOT / ".venv" / "bin" / "feereg")


def load_average() -> str:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return f"load average {one}, {five}, {fifteen} ({os.cpu_count()} cores)"


def run(args: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds and peak memory (MB) of one feereg command, and its output.
    os.wait4 gives that one child's resource use (getrusage would give the largest child's)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen([FEEREG, *args], env=env, cwd=str(ROOT), stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode:
        raise SystemExit(f"`feereg {' '.join(args)}` failed:\n{stdout}\n{stderr}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout


def environment(url: str, folder: Path, search: str) -> dict[str, str]:
    return {**os.environ, "FEEREG_DATABASE_URL": url, "FEEREG_SECRET_KEY": "bench",
            "FEEREG_SEARCH_DIR": str(folder / "search"), "FEEREG_SEARCH_BACKEND": search,
            "FEEREG_BULK_DIR": str(folder / "bulk"), "FEEREG_PDF_CACHE_DIR": str(folder / "pdf")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--database-url", help="a registry already loaded (no demo load)")
    parser.add_argument("--target-url", help="PostgreSQL admin URL: restore into a new database there")
    parser.add_argument("--keep", action="store_true", help="keep the files and the target database")
    parser.add_argument("--target-search", default="whoosh", choices=["whoosh", "null"],
                        help="the restored registry's search backend (null: the restore alone, no index rebuild)")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="feereg-backup-bench-"))
    print(load_average())
    rows: list[tuple[str, float, float, float]] = []

    source = options.database_url or f"sqlite:///{folder / 'source.sqlite'}"
    source_env = environment(source, folder / "source", "null")
    if not options.database_url:
        run(["db", "upgrade"], source_env)
        wall, cpu, peak, out = run(["demo", "--items", str(options.items)], source_env)
        print(out.strip().splitlines()[0])
        rows.append((f"demo --items {options.items:,}", wall, cpu, peak))

    archive = folder / "registry.feereg.gz"
    wall, cpu, peak, out = run(["backup", str(archive)], source_env)
    print(out.strip())
    rows.append(("backup", wall, cpu, peak))

    created = None
    if options.target_url:
        from sqlalchemy import create_engine, text

        from feereg.config import normalise_database_url

        created = f"feereg_backup_bench_{os.getpid()}"
        admin = create_engine(normalise_database_url(options.target_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{created}"'))
        target = options.target_url.rsplit("/", 1)[0] + "/" + created
    else:
        target = f"sqlite:///{folder / 'target.sqlite'}"
    target_env = environment(target, folder / "target", options.target_search)
    try:
        run(["db", "upgrade"], target_env)
        wall, cpu, peak, out = run(["restore", str(archive)], target_env)
        print(out.strip())
        rows.append((f"restore (+ reindex: {options.target_search}, verify)", wall, cpu, peak))
    finally:
        if created and not options.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{created}"'))
    print(f"\narchive: {archive.stat().st_size / 1e6:.1f} MB; {load_average()}")
    print(f"{'step':<32}{'wall s':>10}{'cpu s':>10}{'peak MB':>10}")
    for step, wall, cpu, peak in rows:
        print(f"{step:<32}{wall:>10.1f}{cpu:>10.1f}{peak:>10.0f}")
    if not options.keep:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
