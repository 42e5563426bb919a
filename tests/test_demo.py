"""The demo generator: exact scale, valid chains, determinism, labelled data, planted cases."""
import json
from collections import Counter
from decimal import Decimal

from sqlalchemy import func, select

from feereg.demo.generator import DEMO_PASSWORD, generate
from feereg.models import FeeItem, FeeItemVersion, FeeType, Firm, User
from feereg.services import accounts, history

from .conftest import _empty_tables

PLANTED_RULES = {"ABOLISHED", "OVER_CAP", "MARKUP", "PEER_OUTLIER", "NO_NOTICE", "STEEP_RISE", "DUPLICATE",
                 "MISPLACED", "INCOMPLETE"}


def _regenerate(session, seed):
    session.close()  # release the read transaction before the tables are emptied
    _empty_tables()
    generate(session, firms=50, items=260, seed=seed)
    session.commit()
    return session.execute(select(Firm.credit_code, Firm.chain_head).order_by(Firm.credit_code)).all()


def _count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def test_demo_has_exactly_the_asked_scale_and_intact_chains(session):
    report = generate(session, firms=120, items=700, seed=5)
    session.commit()
    assert (report.firms, report.items) == (120, 700)
    assert _count(session, Firm) == 120 and _count(session, FeeItem) == 700
    assert _count(session, FeeItemVersion) == report.versions > 700  # some items have history
    checked, problems = history.verify_all(session)
    assert checked == 120 and problems == []
    # Every category is present and every firm publishes something.
    assert len(session.scalars(select(Firm.category).distinct()).all()) == 10
    assert session.scalar(select(func.count(func.distinct(FeeItem.firm_id)))) == 120


def test_demo_is_labelled_synthetic(session):
    generate(session, firms=60, items=300, seed=5)
    session.commit()
    for firm in session.scalars(select(Firm)):
        assert firm.name_zh.endswith("（演示）") and firm.name_en.endswith("(demo)")
        assert firm.contact_email.endswith("@demo.feereg.example")


def test_same_seed_same_registry_hashes_included(app, session):
    first = _regenerate(session, 11)
    assert len(first) == 50
    assert _regenerate(session, 11) == first
    assert _regenerate(session, 12) != first
    session.close()


def test_planted_cases_cover_every_rule_and_ordinary_items_stay_regular(session, tmp_path):
    path = tmp_path / "planted.json"
    report = generate(session, firms=679, items=3751, seed=20261123, planted_path=str(path))
    session.commit()
    planted = json.loads(path.read_text(encoding="utf-8"))
    assert len(planted) == len(report.planted)
    assert set(Counter(p["rule"] for p in planted)) == PLANTED_RULES
    planted_keys = {(p["credit_code"], p["fee_code"]) for p in planted}
    # Planted items exist and are live.
    codes = {f.id: f.credit_code for f in session.scalars(select(Firm))}
    live = {(codes[i.firm_id], i.fee_code): i for i in session.scalars(select(FeeItem))}
    assert planted_keys <= set(live)

    catalog = {ft.code: ft for ft in session.scalars(select(FeeType))}
    categories = {f.id: f.category for f in session.scalars(select(Firm))}
    planted_firms = {p["credit_code"] for p in planted}
    for (code, fee_code), item in live.items():
        if code in planted_firms:
            continue
        fee_type = catalog[item.fee_type_code]
        # Ordinary firms charge only what their category may, nothing abolished, fully disclosed.
        assert categories[item.firm_id] in fee_type.charged_by_list, (code, fee_code)
        assert fee_type.abolished_from is None
        assert item.service_content and "详见" not in item.service_content
        if item.pricing_basis != "market":
            assert item.legal_basis
    # Ordinary price changes stay modest and are announced at least 30 days ahead.
    previous: dict[int, FeeItemVersion] = {}
    for version in session.scalars(select(FeeItemVersion).order_by(FeeItemVersion.item_id, FeeItemVersion.seq)):
        before = previous.get(version.item_id)
        previous[version.item_id] = version
        if before is None or codes[version.firm_id] in planted_firms:
            continue
        assert version.amount <= before.amount * Decimal("1.5")
        assert (version.effective_from - version.published_at.date()).days >= 30


def test_demo_logins_work(session):
    generate(session, firms=30, items=150, seed=3)
    session.commit()
    publisher = session.scalar(select(User).where(User.email == "publisher@demo.feereg"))
    assert publisher.role == "publisher" and publisher.firm.category == "shipping_line"
    for email in ("publisher@demo.feereg", "regulator@demo.feereg", "admin@demo.feereg"):
        assert accounts.authenticate(session, email, DEMO_PASSWORD).email == email


def test_cli_demo_loads_once(runner, session):
    result = runner.invoke(args=["demo", "--firms", "20", "--items", "80", "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert "20 firms, 80 items" in result.output
    again = runner.invoke(args=["demo", "--if-empty", "--items", "80"])
    assert again.exit_code == 0 and "nothing loaded" in again.output
    assert _count(session, FeeItem) == 80
    refused = runner.invoke(args=["demo", "--items", "80"])
    assert refused.exit_code != 0
