"""Verify a feereg bulk download offline: python -m feereg.verify_bulk DIR

Needs nothing but Python 3.9+ and the downloaded files — not the registry's database, not
feereg itself: the same file is offered beside the data (verify_bulk.py), to be run as
`python3 verify_bulk.py DIR`. So it imports only the standard library, and it is also
where the download's format is defined (feereg/exports/bulk.py writes what is read here).

What it checks:
  * every file listed in manifest.json is there, with the manifest's size and SHA-256;
  * in each versions file (JSON Lines and CSV), every version's hash, recomputed from its
    fields exactly as the registry computed it when publishing (SHA-256 over the UTF-8 of
    the record as canonical JSON: keys sorted, no spaces, non-ASCII kept, every field but
    `hash` itself), and each firm's chain: seq 1, 2, 3… without gaps, each prev_hash equal
    to the hash before it, and the last (seq, hash) equal to the firm's chain head in the
    manifest and in the firms file;
  * each current item is a version of its firm's chain with the same fields.

A changed amount anywhere breaks its version's hash; a version removed or re-hashed breaks
the chain; a chain rewritten whole ends at another head than the manifest's. Compare the
manifest's heads with the registry's own pages (each firm page shows its chain head) to
know the manifest itself is the registry's.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

FORMAT = "feereg-bulk/1"
HASH_SCHEME = "feereg-v1"
MANIFEST = "manifest.json"
TABLES = ("firms", "items", "versions")
FORMATS = ("jsonl", "csv")

#: The fields of a fee item that a firm publishes (models.PUBLISHED_FIELDS).
PUBLISHED = ("fee_type_code", "fee_code", "name_zh", "name_en", "unit", "container_size", "cargo_scope",
             "trade", "direction", "amount", "currency", "tax_included", "tax_rate", "tiers", "pricing_basis",
             "service_content", "legal_basis", "ports")
#: A version: every field its hash covers, in the canonical form, then the hash.
VERSION_COLUMNS = ("credit_code", "seq", "item_id", "kind", "effective_from", "published_at", *PUBLISHED,
                   "reason", "published_by", "scheme", "prev_hash", "hash")
#: A fee item in force on the manifest's `current_on` date: its version's fields.
ITEM_COLUMNS = ("credit_code", "item_id", "seq", "hash", "effective_from", "published_at", *PUBLISHED)
FIRM_COLUMNS = ("credit_code", "name_zh", "name_en", "category", "ports", "status", "status_reason",
                "contact_phone", "chain_seq", "chain_head")
COLUMNS = {"firms": FIRM_COLUMNS, "items": ITEM_COLUMNS, "versions": VERSION_COLUMNS}
#: CSV cells are text: these are read back as numbers and yes/no.
INT_FIELDS = frozenset({"seq", "item_id", "published_by", "chain_seq"})
BOOL_FIELDS = frozenset({"tax_included"})
#: A CSV text cell starting with one of these was written with a leading apostrophe
#: (feereg/exports/csv.py), so that a spreadsheet does not run it as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def record_hash(record: dict) -> str:
    """The hash of a version record (history.compute_hash over the same fields)."""
    fields = {key: value for key, value in record.items() if key != "hash"}
    payload = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def restore(text: str) -> str:
    """A CSV text cell as it was before the writer's leading apostrophe, if it has one:
    one apostrophe is ours when the rest, past any further apostrophes, starts a formula."""
    if text.startswith("'") and text.lstrip("'").startswith(FORMULA_START):
        return text[1:]
    return text


def file_name(table: str, fmt: str) -> str:
    return f"{table}.{fmt}"


def read_records(path: Path) -> Iterator[dict]:
    """The rows of a .jsonl or .csv file of the download as dicts of typed values."""
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)
        return
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            yield {key: _typed(key, value) for key, value in row.items()}


def _typed(key: str, value):
    if value is None:  # a short row: keep the gap visible as a mismatch, not a crash
        return None
    if key in INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value
    if key in BOOL_FIELDS:
        return {"yes": True, "no": False, "true": True, "false": False}.get(value.lower(), value)
    return restore(value)


@dataclass
class Problem:
    file: str
    reason: str
    credit_code: str = ""
    seq: int | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.credit_code:
            where.append(f"firm {self.credit_code}")
        if self.seq is not None:
            where.append(f"version #{self.seq}")
        return ": ".join(where + [self.reason])


@dataclass
class Report:
    problems: list[Problem]
    firms: int = 0
    versions: int = 0
    checked_files: tuple = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(directory: str | Path) -> Report:
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return Report([Problem(MANIFEST, f"cannot be read: {exc}")])
    problems: list[Problem] = []
    if manifest.get("format") != FORMAT or manifest.get("hash_scheme") != HASH_SCHEME:
        problems.append(Problem(MANIFEST, f"format {manifest.get('format')!r} / hash scheme "
                                          f"{manifest.get('hash_scheme')!r}: this verifier reads {FORMAT} / {HASH_SCHEME}"))
        return Report(problems)
    heads = {code: (chain["seq"], chain["head"]) for code, chain in manifest["chains"].items()}
    listed = {entry["name"]: entry for entry in manifest["files"]}
    problems += _check_files(directory, listed)

    checked, versions = [], 0
    for fmt in FORMATS:
        names = {table: file_name(table, fmt) for table in TABLES}
        if not all((directory / name).exists() for name in names.values()):
            continue
        checked.append(fmt)
        rows, found = _check_chains(directory / names["versions"], heads)
        problems += found
        versions = max(versions, rows)
        problems += _check_rows(names["versions"], rows, listed)
        problems += _check_firms(directory / names["firms"], heads, listed)
        problems += _check_items(directory / names["items"], directory / names["versions"], listed)
    if not checked:
        problems.append(Problem(MANIFEST, "no complete set of firms, items and versions files to check"))
    return Report(problems, len(heads), versions, tuple(checked))


def _check_files(directory: Path, listed: dict) -> list[Problem]:
    problems = []
    for name, entry in listed.items():
        path = directory / name
        if not path.is_file():
            problems.append(Problem(name, "missing (listed in the manifest)"))
        elif path.stat().st_size != entry["bytes"]:  # no need to read it to know
            problems.append(Problem(name, f"does not match the manifest's SHA-256 ({path.stat().st_size} bytes, "
                                          f"the manifest says {entry['bytes']})"))
        elif sha256_file(path) != entry["sha256"]:
            problems.append(Problem(name, "does not match the manifest's SHA-256"))
    return problems


def _check_rows(name: str, rows: int, listed: dict) -> list[Problem]:
    expected = listed.get(name, {}).get("rows")
    if expected is not None and rows != expected:
        return [Problem(name, f"{rows} rows, the manifest says {expected}")]
    return []


def _check_chains(path: Path, heads: dict) -> tuple[int, list[Problem]]:
    """Walk the versions file once, firm by firm (each firm's versions together, in seq order)."""
    name, problems = path.name, []
    done: set[str] = set()
    code, expected_seq, prev_hash, rows = None, 1, "", 0

    def close_firm():
        if code is None:
            return
        done.add(code)
        if code not in heads:
            problems.append(Problem(name, "firm not in the manifest's chains", code))
        elif (expected_seq - 1, prev_hash) != tuple(heads[code]):
            problems.append(Problem(name, f"chain ends at #{expected_seq - 1} {prev_hash[:16]}, the manifest's "
                                          f"head is #{heads[code][0]} {heads[code][1][:16]}", code))

    for record in read_records(path):
        rows += 1
        if record.get("credit_code") != code:
            close_firm()
            code, expected_seq, prev_hash = record.get("credit_code"), 1, ""
            if code in done:
                problems.append(Problem(name, "the firm's versions are not together in the file", code))
        seq = record.get("seq")
        if set(record) != set(VERSION_COLUMNS):
            problems.append(Problem(name, "fields differ from the format's: "
                                          f"{sorted(set(record) ^ set(VERSION_COLUMNS))}", code, seq))
            continue
        if seq != expected_seq:
            problems.append(Problem(name, f"sequence gap: expected #{expected_seq}", code, seq))
        if record["prev_hash"] != prev_hash:
            problems.append(Problem(name, "prev_hash does not match the previous version's hash", code, seq))
        if record["scheme"] != HASH_SCHEME or record_hash(record) != record["hash"]:
            problems.append(Problem(name, "content does not match its hash (changed after publishing)", code, seq))
        prev_hash = record["hash"]
        expected_seq = seq + 1 if isinstance(seq, int) else expected_seq + 1
    close_firm()
    for missing in sorted(code for code, (seq, _head) in heads.items() if seq and code not in done):
        problems.append(Problem(name, f"no versions in the file; the manifest's chain has {heads[missing][0]}",
                                missing))
    return rows, problems


def _check_firms(path: Path, heads: dict, listed: dict) -> list[Problem]:
    problems, rows = [], 0
    for record in read_records(path):
        rows += 1
        code = record.get("credit_code")
        if (record.get("chain_seq"), record.get("chain_head")) != tuple(heads.get(code, (None, None))):
            problems.append(Problem(path.name, "chain head differs from the manifest's", code))
    return problems + _check_rows(path.name, rows, listed)


def _check_items(path: Path, versions_path: Path, listed: dict) -> list[Problem]:
    """Both files are in the same order (firm, then seq): one pass over each."""
    problems, rows = [], 0
    versions = read_records(versions_path)
    for item in read_records(path):
        rows += 1
        code, seq = item.get("credit_code"), item.get("seq")
        for version in versions:
            if version.get("credit_code") == code and version.get("seq") == seq:
                if version.get("kind") != "publish":
                    problems.append(Problem(path.name, "a current item is a withdrawal", code, seq))
                differ = [key for key in ITEM_COLUMNS if item.get(key) != version.get(key)]
                if differ:
                    problems.append(Problem(path.name, f"item {item.get('item_id')} differs from its version in "
                                                       f"{', '.join(differ)}", code, seq))
                break
        else:
            problems.append(Problem(path.name, f"item {item.get('item_id')} is not in {versions_path.name} "
                                               "(or the files are out of order)", code, seq))
            break
    return problems + _check_rows(path.name, rows, listed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a feereg bulk download offline.")
    parser.add_argument("directory", help="the directory holding manifest.json and the data files")
    args = parser.parse_args(argv)
    report = verify(args.directory)
    for problem in report.problems:
        print(f"FAIL {problem}", file=sys.stderr)
    if not report.ok:
        firms = {p.credit_code for p in report.problems if p.credit_code}
        print(f"verify: {len(report.problems)} problem(s)" + (f" in {len(firms)} firm(s)" if firms else ""),
              file=sys.stderr)
        return 1
    print(f"verify: {report.firms} firm chains, {report.versions} versions intact "
          f"({', '.join(report.checked_files)}; every file matches the manifest)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
