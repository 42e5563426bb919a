"""The bulk download: files that hold the registry, a manifest that vouches for them, kept
fresh after publishes, and an offline verifier that catches a changed amount."""
import csv
import hashlib
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from feereg import verify_bulk
from feereg.exports.csv import neutralise, restore
from feereg.extensions import db
from feereg.models import PUBLISHED_FIELDS, FeeItemVersion, Firm
from feereg.services import bulk_download, firms, history, registry
from feereg.services.registry import today

from .factories import days, item_values, make_firm, make_user, publish

DATA_FILES = ("firms.csv", "firms.jsonl", "items.csv", "items.jsonl", "versions.csv", "versions.jsonl")


def _registry(session):
    """Firm A: DOC 450, then 500 from a future date; EIR withdrawn. Firm B: formulas in its
    texts. Firm C: nothing published yet. Firm D: published, then suspended."""
    firm_a = make_firm(name_zh="深圳甲物流有限公司")
    firm_b = make_firm(name_zh="=深圳乙物流有限公司", contact_phone="+86 755 1234 5678", ports=("SHEKOU", "YANTIAN"))
    firm_c = make_firm()
    firm_d = make_firm(category="offport_yard")
    user_a, user_b, user_d = (make_user("publisher", f) for f in (firm_a, firm_b, firm_d))
    doc = publish(firm_a, user_a, days(-30), amount="450")
    eir = publish(firm_a, user_a, days(-30), fee_type="EIR", name_zh="设备交接单费", unit="per_container", amount="80")
    registry.update_draft(session, doc, item_values(amount="500"), user_a, None)
    registry.publish_item(session, doc, user_a, days(40), reason="调价", allow_backdate=True)
    registry.withdraw_item(session, eir, user_a, days(-1), reason="不再收取", allow_backdate=True)
    publish(firm_b, user_b, days(0), name_zh="-文件费", service_content='=HYPERLINK("http://evil.example","x")',
            legal_basis="'=already quoted", fee_code="@DOC", amount="120.5", tax_rate="6")
    publish(firm_d, user_d, days(0), fee_type="STORAGE", name_zh="堆存费", unit="per_container_day",
            tiers="free:7;8-14:85;15-:170", amount="85", ports="MAWAN")
    firms.set_status(session, firm_d, "suspended", "整改中", make_user("admin"))
    session.commit()
    return firm_a, firm_b, firm_c, firm_d


def _build(app):
    manifest = bulk_download.rebuild(app)
    return bulk_download.BulkStore.from_config(app).current_dir(), manifest


def _jsonl(path: Path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _csv(path: Path):
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, for spreadsheets
    return list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))


def test_files_hold_the_registry_and_the_manifest_vouches_for_them(app, session):
    firm_a, firm_b, firm_c, firm_d = _registry(session)
    directory, manifest = _build(app)
    counts = {
        "firms": session.scalar(select(func.count()).select_from(Firm)),
        "versions": session.scalar(select(func.count()).select_from(FeeItemVersion)),
        "items": len(session.scalars(history.versions_in_force(session, today())
                                     .where(FeeItemVersion.kind == "publish")).all()),
    }
    assert manifest["counts"] == counts == {"firms": 4, "versions": 6, "items": 3}
    assert manifest["format"] == "feereg-bulk/1" and manifest["hash_scheme"] == "feereg-v1"
    assert manifest["current_on"] == today().isoformat()
    listed = {entry["name"]: entry for entry in manifest["files"]}
    assert set(listed) == set(DATA_FILES) | {"verify_bulk.py"}
    for name, entry in listed.items():
        body = (directory / name).read_bytes()
        assert entry["bytes"] == len(body) and entry["sha256"] == hashlib.sha256(body).hexdigest(), name
        if entry["table"]:
            assert entry["rows"] == counts[entry["table"]], name
    assert json.loads((directory / "manifest.json").read_text()) == manifest
    # Chain heads as the registry holds them, firms with nothing published included.
    for firm in (firm_a, firm_b, firm_c, firm_d):
        session.refresh(firm)
        assert manifest["chains"][firm.credit_code] == {"seq": firm.chain_seq, "head": firm.chain_head}
    assert manifest["chains"][firm_c.credit_code] == {"seq": 0, "head": ""}

    # Current items: what is in force today — DOC at 450 (500 only from day 40), EIR gone.
    items = _jsonl(directory / "items.jsonl")
    doc = next(i for i in items if i["credit_code"] == firm_a.credit_code)
    assert (doc["amount"], doc["seq"], doc["effective_from"]) == ("450.00", 1, days(-30).isoformat())
    assert [i["fee_type_code"] for i in items if i["credit_code"] == firm_a.credit_code] == ["DOC"]
    storage = next(i for i in items if i["credit_code"] == firm_d.credit_code)
    assert storage["tiers"] == "free:7;8-14:85;15-:170" and storage["ports"] == "MAWAN"

    # Versions: every one, with its hash, in chain order per firm.
    versions = _jsonl(directory / "versions.jsonl")
    stored = session.scalars(select(FeeItemVersion).order_by(FeeItemVersion.firm_id, FeeItemVersion.seq)).all()
    assert [(v["credit_code"], v["seq"], v["hash"]) for v in versions] == \
        [(v.firm.credit_code, v.seq, v.hash) for v in stored]
    change = versions[2]
    assert (change["kind"], change["amount"], change["reason"], change["prev_hash"]) == \
        ("publish", "500.00", "调价", versions[1]["hash"])
    assert versions[3]["kind"] == "withdraw" and versions[3]["amount"] == "80.00"

    firms_rows = {f["credit_code"]: f for f in _jsonl(directory / "firms.jsonl")}
    assert firms_rows[firm_d.credit_code]["status"] == "suspended"
    assert firms_rows[firm_d.credit_code]["status_reason"] == "整改中"
    assert firms_rows[firm_b.credit_code]["ports"] == "SHEKOU;YANTIAN"
    # CSV and JSON Lines hold the same rows.
    for table in ("firms", "items", "versions"):
        as_csv = list(verify_bulk.read_records(directory / f"{table}.csv"))
        assert as_csv == list(verify_bulk.read_records(directory / f"{table}.jsonl")), table


def test_every_exported_version_hashes_to_its_stored_hash(app, session):
    _registry(session)
    directory, _manifest = _build(app)
    stored = {(v.firm.credit_code, v.seq): v.hash for v in session.scalars(select(FeeItemVersion))}
    for name in ("versions.jsonl", "versions.csv"):
        records = list(verify_bulk.read_records(directory / name))
        assert len(records) == len(stored)
        for record in records:
            assert verify_bulk.record_hash(record) == record["hash"] == stored[(record["credit_code"], record["seq"])]
    # The download carries every field the hash covers.
    assert set(PUBLISHED_FIELDS) == set(verify_bulk.PUBLISHED)
    report = verify_bulk.verify(directory)
    assert report.ok, [str(p) for p in report.problems]
    assert (report.firms, report.versions, report.checked_files) == (4, 6, ("jsonl", "csv"))


def test_formulas_are_neutralised_in_csv_and_still_verify(app, session):
    firm_a, firm_b, *_ = _registry(session)
    directory, _manifest = _build(app)
    versions = [row for row in _csv(directory / "versions.csv") if row["credit_code"] == firm_b.credit_code]
    assert versions[0]["name_zh"] == "'-文件费"
    assert versions[0]["service_content"] == "'=HYPERLINK(\"http://evil.example\",\"x\")"
    assert versions[0]["fee_code"] == "'@DOC"
    assert versions[0]["legal_basis"] == "''=already quoted"  # the firm's own apostrophe survives
    assert versions[0]["amount"] == "120.50" and versions[0]["tax_rate"] == "6.00"
    firm_row = next(row for row in _csv(directory / "firms.csv") if row["credit_code"] == firm_b.credit_code)
    assert firm_row["name_zh"] == "'=深圳乙物流有限公司" and firm_row["contact_phone"] == "'+86 755 1234 5678"
    # JSON Lines are for programs: the text as published.
    record = next(r for r in _jsonl(directory / "versions.jsonl") if r["credit_code"] == firm_b.credit_code)
    assert record["legal_basis"] == "'=already quoted" and record["name_zh"] == "-文件费"
    assert verify_bulk.verify(directory).ok


@pytest.mark.parametrize("text", ["=1", "'=1", "''=1", "'", "'x", "x'=", "-", "@a", "\t=x", "''"])
def test_neutralised_cells_restore_exactly(text):
    assert restore(neutralise(text)) == text
    assert verify_bulk.restore(neutralise(text)) == text


def _tamper(path: Path, credit_code: str, seq: int, amount: str) -> None:
    if path.suffix == ".jsonl":
        lines = []
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if (record["credit_code"], record["seq"]) == (credit_code, seq):
                record["amount"] = amount
                line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
            lines.append(line)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return
    rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    header = rows[0]
    for row in rows[1:]:
        if (row[header.index("credit_code")], row[header.index("seq")]) == (credit_code, str(seq)):
            row[header.index("amount")] = amount
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh, lineterminator="\r\n").writerows(rows)


@pytest.mark.parametrize("name", ["versions.csv", "versions.jsonl"])
def test_a_changed_amount_fails_verification_naming_firm_and_version(app, session, tmp_path, name):
    firm_a, firm_b, *_ = _registry(session)
    directory, _manifest = _build(app)
    copy = tmp_path / "download"
    shutil.copytree(directory, copy)
    # Run as anyone would: the copy of the verifier in the download, without feereg.
    clean = subprocess.run([sys.executable, "-I", str(copy / "verify_bulk.py"), str(copy)],
                           capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr
    assert "4 firm chains, 6 versions intact" in clean.stdout

    _tamper(copy / name, firm_a.credit_code, 3, "5.00")
    result = subprocess.run([sys.executable, "-I", str(copy / "verify_bulk.py"), str(copy)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert f"FAIL {name}: firm {firm_a.credit_code}: version #3: content does not match its hash" in result.stderr
    assert f"FAIL {name}: does not match the manifest's SHA-256" in result.stderr
    assert firm_b.credit_code not in result.stderr
    other = "versions.jsonl" if name == "versions.csv" else "versions.csv"
    assert f"{other}: firm" not in result.stderr  # the untouched copy still verifies
    # The item in force is version #1, not #3: the items file is not implicated.
    assert "items." not in result.stderr


def test_a_rewritten_chain_fails_at_the_manifests_head(app, session, tmp_path):
    firm_a, *_ = _registry(session)
    directory, _manifest = _build(app)
    copy = tmp_path / "download"
    shutil.copytree(directory, copy)
    # Change the amount and re-hash the rest of the chain, as a forger would.
    path = copy / "versions.jsonl"
    records = _jsonl(path)
    prev = ""
    for record in records:
        if record["credit_code"] != firm_a.credit_code:
            continue
        if record["seq"] == 1:
            record["amount"] = "1.00"
        record["prev_hash"] = prev
        record["hash"] = prev = verify_bulk.record_hash(record)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    (copy / "versions.csv").unlink()
    report = verify_bulk.verify(copy)
    reasons = [str(p) for p in report.problems]
    assert f"versions.jsonl: firm {firm_a.credit_code}: chain ends at #4 {prev[:16]}, the manifest's head is " \
           f"#4 {firm_a.chain_head[:16]}" in reasons
    assert any(r.startswith(f"items.jsonl: firm {firm_a.credit_code}: version #1: item") for r in reasons)
    assert "versions.csv: missing (listed in the manifest)" in reasons


def test_feereg_verify_bulk_command(app, session, runner, tmp_path):
    firm_a, *_ = _registry(session)
    directory, _manifest = _build(app)
    ok = runner.invoke(args=["verify", "--bulk", str(directory)])
    assert ok.exit_code == 0, ok.output
    copy = tmp_path / "download"
    shutil.copytree(directory, copy)
    _tamper(copy / "versions.csv", firm_a.credit_code, 2, "1.00")
    failed = runner.invoke(args=["verify", "--bulk", str(copy)])
    assert failed.exit_code != 0
    assert f"versions.csv: firm {firm_a.credit_code}: version #2: content does not match its hash" in failed.output


def test_a_publish_makes_it_stale_and_the_next_download_has_the_change(app, client, session):
    firm_a, firm_b, *_ = _registry(session)
    store = bulk_download.BulkStore.from_config(app)
    assert store.is_stale()  # never built
    page = client.get("/data").get_data(as_text=True)  # built by the request that found it stale
    first = store.current_dir()
    assert first is not None and not store.is_stale()
    manifest = json.loads((first / "manifest.json").read_text())
    for entry in manifest["files"]:
        assert entry["sha256"] in page
    assert hashlib.sha256((first / "manifest.json").read_bytes()).hexdigest() in page
    assert f"（共 {len(manifest['chains'])} 条）" in page
    assert "python3 verify_bulk.py" in page

    # A draft edit is not published: the download stays as it is.
    user = make_user("publisher", firm_b)
    item = publish(firm_b, user, days(0), fee_type="EIR", name_zh="设备交接单费", unit="per_container", amount="90")
    session.commit()
    assert store.is_stale()
    client.get("/data")
    registry.update_draft(session, item, item_values(fee_type="EIR", name_zh="设备交接单费", unit="per_container",
                                                     amount="95"), user, None)
    session.commit()
    assert not store.is_stale()

    registry.publish_item(session, item, user, days(1))
    session.commit()
    assert store.is_stale()
    with client.get("/data/versions.jsonl") as response:  # a file response: closed when read
        body = response.get_data(as_text=True)
    assert store.current_dir() != first and not store.is_stale()
    newest = [json.loads(line) for line in body.splitlines() if firm_b.credit_code in line][-1]
    assert (newest["seq"], newest["amount"]) == (3, "95.00")
    assert verify_bulk.verify(store.current_dir()).ok

    # A firm's details change without a version: that marks it stale too.
    firms.set_status(session, db.session.get(Firm, firm_a.id), "suspended", "整改", make_user("admin"))
    session.commit()
    assert store.is_stale()
    client.get("/data")
    rows = _jsonl(store.current_dir() / "firms.jsonl")
    assert next(r for r in rows if r["credit_code"] == firm_a.credit_code)["status"] == "suspended"


def test_a_rolled_back_publish_does_not_mark_it_stale(app, session):
    firm_a, *_ = _registry(session)
    _build(app)
    store = bulk_download.BulkStore.from_config(app)
    publish(firm_a, make_user("publisher", firm_a), days(0), fee_type="SEAL", name_zh="铅封费",
            unit="per_container", amount="30")
    session.rollback()
    assert not store.is_stale()


def test_generations_swap_atomically_and_two_are_kept(app, session):
    _registry(session)
    store = bulk_download.BulkStore.from_config(app)
    (store.root / ".tmp-20260101T000000-dead").mkdir(parents=True)  # a build that died
    built = []
    for _ in range(3):
        bulk_download.rebuild(app)
        built.append(store.current_dir())
    assert len(set(built)) == 3
    assert (store.root / "current").is_symlink() and store.current_dir() == built[-1]
    assert sorted(p.name for p in store.root.glob("gen-*")) == sorted(p.name for p in built[1:])
    assert not list(store.root.glob(".tmp-*"))
    assert verify_bulk.verify(store.current_dir()).ok


def test_two_requests_finding_it_stale_build_it_once(app, session):
    _registry(session)
    store = bulk_download.BulkStore.from_config(app)
    results, errors = [], []

    def visit():
        try:
            with app.app_context():
                results.append(bulk_download.fresh_download().directory)
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=visit) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(results)) == 1 and results[0] == store.current_dir()
    assert len(list(store.root.glob("gen-*"))) == 1


def test_a_big_registry_is_rebuilt_in_the_background_meanwhile_serving_the_old_files(app, client, session):
    firm_a, *_ = _registry(session)
    client.get("/data")
    store = bulk_download.BulkStore.from_config(app)
    first = store.current_dir()
    app.config["BULK_REBUILD_IN_REQUEST_MAX_VERSIONS"] = 0
    publish(firm_a, make_user("publisher", firm_a), days(0), fee_type="SEAL", name_zh="铅封费",
            unit="per_container", amount="30")
    session.commit()
    page = client.get("/data?lang=en").get_data(as_text=True)
    for thread in [t for t in threading.enumerate() if t.name == "feereg-bulk-download"]:
        thread.join(timeout=60)
    assert "new files are being prepared" in page and store.summary(first)["files"][0]["sha256"] in page
    assert store.current_dir() != first and not store.is_stale()
    assert store.summary()["counts"]["versions"] == 7


def test_files_are_served_by_name_only_from_the_manifest(app, client, session):
    _registry(session)
    with client.get("/data/manifest.json") as manifest:
        assert manifest.status_code == 200 and manifest.mimetype == "application/json"
        listed = manifest.get_json()["files"]
    with client.get("/data/versions.csv") as versions_csv:
        assert versions_csv.mimetype == "text/csv"
        assert versions_csv.headers["Content-Disposition"] == "attachment; filename=versions.csv"
        assert hashlib.sha256(versions_csv.data).hexdigest() == next(f["sha256"] for f in listed
                                                                     if f["name"] == "versions.csv")
    with client.get("/data/verify_bulk.py") as verifier:
        assert verifier.data == Path(verify_bulk.__file__).read_bytes()
    for name in ("built", ".lock", "stale", ".summary.json", "..%2Fbuilt", "feereg.sqlite"):
        assert client.get(f"/data/{name}").status_code == 404, name


def test_data_page_is_bilingual_and_linked_from_every_page(client, session):
    _registry(session)
    zh = client.get("/data?lang=zh").get_data(as_text=True)
    assert "开放数据" in zh and "离线核验哈希链" in zh and "versions.jsonl" in zh
    assert '<a href="/data">开放数据</a>' in client.get("/firms").get_data(as_text=True)
    en = client.get("/data?lang=en").get_data(as_text=True)
    assert "Verify the hash chains offline" in en and "/feeds/ports/SHEKOU.atom?lang=en" in en


def test_cli_builds_and_reports_files(app, runner, session):
    _registry(session)
    result = runner.invoke(args=["bulk"])
    assert result.exit_code == 0, result.output
    assert f"bulk: 4 firms, 3 items in force on {today().isoformat()}, 6 versions" in result.output
    manifest = bulk_download.BulkStore.from_config(app).summary()
    for entry in manifest["files"]:
        assert entry["sha256"] in result.output
    again = runner.invoke(args=["bulk", "--if-stale"])
    assert again.exit_code == 0 and "up to date" in again.output
