"""Audit quality benchmark: the anomaly rules against the demo's planted irregularities.

    .venv/bin/python benchmarks/audit_quality.py [--items 3751] [--database URL] [--recreate]

Loads the synthetic demo registry (the generator records which items it made irregular,
and why), runs the full anomaly scan once, timed, then prints per rule:

* recall    — planted cases of the rule that got a flag of the rule;
* precision — flags of the rule that are on a planted case of the rule (a flag on an
  ordinary item, or of another rule on a planted item, counts against it);

and the scan time, plus a second scan's time and what it changed (it must change
nothing: re-running never duplicates a flag). Targets: recall 100 %, precision ≥ 90 %,
1,000,000 items scanned in ≤ 30 s.

The database defaults to a temporary SQLite file; pass a PostgreSQL URL with --recreate
to have the script drop and create that database first.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, delete, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from feereg import create_app  # noqa: E402
from feereg.config import normalise_database_url  # noqa: E402
from feereg.extensions import db  # noqa: E402


def recreate(url: str) -> None:
    parsed = make_url(normalise_database_url(url))
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                      {"n": parsed.database})
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}"'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=3751)
    parser.add_argument("--firms", type=int, default=None)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--database", default=None, help="SQLAlchemy URL (default: a temporary SQLite file)")
    parser.add_argument("--recreate", action="store_true", help="drop and create the PostgreSQL database first")
    parser.add_argument("--reuse", metavar="PLANTED_JSON", default=None,
                        help="measure on a demo already loaded into --database (its planted file): its flags "
                             "are deleted first, so the scan is a first scan again")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="feereg-audit-"))
    url = args.database or f"sqlite:///{tmp / 'audit.sqlite'}"
    if args.recreate and url.startswith("postgres"):
        recreate(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "SEARCH_BACKEND": "null",
                      "SEARCH_DIR": str(tmp / "search")})
    with app.app_context():
        from flask_migrate import upgrade

        from feereg.demo.generator import generate
        from feereg.models import AuditEvent, FeeItem, Firm, Flag
        from feereg.services import checks, hooks

        upgrade()
        session = db.session
        if args.reuse:
            planted_path = Path(args.reuse)
            session.execute(delete(AuditEvent).where(AuditEvent.action.like("flag.%")))
            session.execute(delete(Flag))
            session.commit()
            print(f"{db.engine.dialect.name}: reusing the loaded demo, "
                  f"{session.scalar(select(func.count()).select_from(FeeItem)):,} items")
        else:
            if session.scalar(select(func.count()).select_from(Firm)):
                print("the database already holds firms: give an empty one (or --recreate)", file=sys.stderr)
                return 2
            firms = args.firms or max(679, args.items // 6)
            planted_path = tmp / "planted.json"
            # The load would scan by itself after commit; here the scan is what is timed.
            hooks._after_bulk_load.remove(checks.scan_after_bulk_load)
            started = time.perf_counter()
            report = generate(session, firms=firms, items=args.items, seed=args.seed,
                              planted_path=str(planted_path))
            session.commit()
            print(f"{db.engine.dialect.name}: demo {report.firms:,} firms, {report.items:,} items, "
                  f"{report.versions:,} versions, {len(report.planted)} planted, loaded in "
                  f"{time.perf_counter() - started:.1f} s (planted cases: {planted_path})")

        started = time.perf_counter()
        first = checks.full_scan(session)
        session.commit()
        scan_seconds = time.perf_counter() - started
        started = time.perf_counter()
        second = checks.full_scan(session)
        session.commit()
        rescan_seconds = time.perf_counter() - started

        planted = json.loads(planted_path.read_text(encoding="utf-8"))
        items = {(code, fee_code): item_id for item_id, code, fee_code in session.execute(
            select(FeeItem.id, Firm.credit_code, FeeItem.fee_code).join(Firm, Firm.id == FeeItem.firm_id))}
        cases: dict[str, set[int]] = defaultdict(set)
        for case in planted:
            cases[case["rule"]].add(items[(case["credit_code"], case["fee_code"])])
        flagged: dict[str, Counter] = defaultdict(Counter)
        hits: dict[str, set[int]] = defaultdict(set)
        false_examples: list[str] = []
        for rule, item_id, evidence, explanation in session.execute(
                select(Flag.rule, Flag.item_id, Flag.evidence, Flag.explanation)):
            on_case = item_id in cases[rule] or (rule == "DUPLICATE" and evidence.get("other_item_id") in cases[rule])
            flagged[rule]["true" if on_case else "false"] += 1
            if not on_case and len(false_examples) < 10:
                false_examples.append(f"  {rule} item {item_id}: {explanation}")
            if on_case:
                hits[rule].add(item_id if item_id in cases[rule] else evidence.get("other_item_id"))

        print(f"\n{'rule':<14}{'planted':>9}{'found':>8}{'recall':>9}{'flags':>8}{'precision':>11}")
        all_ok = True
        for rule in sorted(set(cases) | set(flagged)):
            n_cases, found = len(cases[rule]), len(hits[rule] & cases[rule])
            n_flags = sum(flagged[rule].values())
            recall = found / n_cases if n_cases else 1.0
            precision = flagged[rule]["true"] / n_flags if n_flags else 1.0
            all_ok &= recall == 1.0 and precision >= 0.9
            print(f"{rule:<14}{n_cases:>9}{found:>8}{recall:>9.1%}{n_flags:>8}{precision:>11.1%}")
        total_cases = sum(len(v) for v in cases.values())
        total_found = sum(len(hits[r] & cases[r]) for r in cases)
        total_flags = sum(sum(c.values()) for c in flagged.values())
        total_true = sum(c["true"] for c in flagged.values())
        print(f"{'all':<14}{total_cases:>9}{total_found:>8}{total_found / max(total_cases, 1):>9.1%}"
              f"{total_flags:>8}{total_true / max(total_flags, 1):>11.1%}")
        if false_examples:
            print("\nflags on no planted case of their rule (first 10):", *false_examples, sep="\n")
        print(f"\nfull scan: {first.items:,} items ({first.live:,} live) in {scan_seconds:.2f} s "
              f"(rules {first.seconds:.2f} s, commit included in the first figure); "
              f"{first.raised} flags raised")
        print("  phases: " + ", ".join(f"{name} {sec:.2f} s" for name, sec in first.phases.items()))
        print(f"re-scan:   {rescan_seconds:.2f} s; {second.raised} raised, {second.reopened} reopened, "
              f"{second.resolved} resolved (must all be 0)")
        print("targets: recall 100 %, precision ≥ 90 %, 1,000,000 items ≤ 30 s — "
              + ("quality met" if all_ok else "quality NOT met"))
        db.session.remove()
        db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
