"""The two search backends side by side on one PostgreSQL registry: the same answers, and
what only the PostgreSQL backend promises (indexing inside the publishing transaction,
readers following changes committed in any order)."""
from __future__ import annotations

import itertools
import random
import sqlite3
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from feereg import create_app
from feereg.demo import vocabulary as vocab
from feereg.extensions import db
from feereg.models import FeeItem, FeeItemVersion, FeeType, Firm
from feereg.search import get_backend, pg_firms, pg_store, pg_tokens
from feereg.search.query import parse
from feereg.search.whoosh_backend import WhooshBackend
from feereg.services import firms, registry

from .factories import item_values, make_firm, make_user, publish

POSTGRES_BACKEND = pytest.mark.parametrize("search_backend", ["postgres"], indirect=True)
pytestmark = pytest.mark.postgres

#: Queries of every kind: one and two characters, phrases, spaced names, English words and
#: stems, codes, pinyin and initials, ports, categories, firm-name words, mixed terms.
FIXED_QUERIES = [
    "费", "箱", "港", "堆场", "吊箱", "码头", "代理", "操作费", "港外堆场吊箱费", "港外堆场 吊箱费", "场吊",
    "THC", "thc", "DOC", "EIR", "fee", "handling", "cleaning", "containers", "Shipping", "Yantian", "深圳",
    "盐田", "蛇口 THC", "THC费", "盐田 公司", "duichang", "mtczf", "matou", "cleaning 蛇口", "演示", "不存在",
    '"港外 堆场"', "40hq", "reefer 冷藏", "海通", "Haitong", "华南 码头操作费",
]
FILTERS = [{}, {"port": "YANTIAN"}, {"category": "offport_yard"}, {"currency": "USD"},
           {"category": "shipping_line", "port": "SHEKOU"}, {"fee_type": "THC"}]
CONTENTS = ["", "", "签发提单及相关单证", "装卸船作业，含港内搬运", "Container cleaning and inspection",
            "堆场 吊箱 作业", "冷藏箱插电及温度监控 reefer monitoring"]


def _random_registry(session, seed: int, n_firms: int = 24) -> list[int]:
    """Firms named like the demo's, each publishing a random handful of catalog fees under
    catalog names, aliases or names of their own, some in foreign currency, some announced."""
    rng = random.Random(seed)
    catalog = list(session.scalars(select(FeeType).where(FeeType.abolished_from.is_(None)).order_by(FeeType.code)))
    admin = make_user("admin")
    item_ids = []
    for n in range(n_firms):
        category = rng.choice(sorted(vocab.CATEGORY_PORTS))
        ports = rng.sample(vocab.CATEGORY_PORTS[category], k=min(2, len(vocab.CATEGORY_PORTS[category])))
        district, trade = rng.choice(vocab.DISTRICTS), rng.choice(vocab.TRADE_NAMES)
        suffix = vocab.CATEGORY_SUFFIX[category]
        firm = make_firm(category, ports=tuple(ports), name_zh=f"{district[0]}{trade[0]}{suffix[0]}",
                         name_en=f"{district[1]} {trade[1]} {suffix[1]}")
        changes = []
        for fee_type in rng.sample(catalog, k=rng.randint(3, 8)):
            name = rng.choice([fee_type.name_zh, *fee_type.alias_list, "港外" + fee_type.name_zh,
                               " ".join(fee_type.name_zh)])
            values = item_values(
                fee_type=fee_type.code, name_zh=name, name_en=rng.choice(["", fee_type.name_en]),
                unit=rng.choice(["per_container", "per_bl", "per_shipment"]),
                amount=str(rng.choice([50, 80, 150, 180, 450, 900, 1180])), currency=rng.choice(["CNY"] * 4 + ["USD", "HKD"]),
                service_content=rng.choice(CONTENTS), ports=rng.choice([";".join(ports), ports[0], ""]))
            start = registry.today() + timedelta(days=rng.choice([0, 0, 0, -30, 20]))
            changes.append(registry.Change(None, values, start))
        versions = registry.publish_changes(session, firm, changes, admin, allow_backdate=True)
        item_ids += [v.item_id for v in versions]
    session.commit()
    return item_ids


def _random_changes(session, item_ids: list[int], seed: int) -> list[int]:
    """Renames, price changes (some announced), withdrawals and new items: one commit."""
    rng = random.Random(seed)
    admin = make_user("admin")
    touched = []
    for item_id in rng.sample(item_ids, k=12):
        item = session.get(FeeItem, item_id)
        action = rng.choice(["rename", "price", "announce", "withdraw"])
        if action == "withdraw":
            registry.withdraw_item(session, item, admin, registry.today() + timedelta(days=rng.choice([0, 10])))
        else:
            values = {"name_zh": "重箱" + item.name_zh} if action == "rename" else {"amount": item.amount + 7}
            registry.update_draft(session, item, values, admin, None)
            when = registry.today() + timedelta(days=15 if action == "announce" else 0)
            registry.publish_item(session, item, admin, when)
        touched.append(item_id)
    firm = session.get(FeeItem, item_ids[0]).firm
    new = publish(firm, admin, fee_type="LOLO", name_zh="港外堆场夜间吊箱费", name_en="Night lift on/off",
                  unit="per_container", amount="260", ports="")
    session.commit()
    return touched + [new.id]


def _matches(backend, q: str) -> list[dict]:
    return [{kind: sorted(set(refs)) for kind, refs in by_kind.items() if refs} for by_kind in backend.matches(parse(q))]


def _queries(session) -> list[str]:
    """The fixed queries and words taken from the registry itself."""
    rng = random.Random(7)
    names = sorted(set(session.scalars(select(FeeItemVersion.name_zh))))
    firms = sorted(set(session.scalars(select(Firm.name_zh))))
    taken = []
    for name in rng.sample(names, k=min(10, len(names))) + rng.sample(firms, k=min(6, len(firms))):
        compact = name.replace(" ", "")
        start = rng.randrange(0, max(1, len(compact) - 3))
        taken += [compact[start:start + rng.choice([1, 2, 3, 4])], name]
    return list(dict.fromkeys(FIXED_QUERIES + taken))


def _spans_whoosh(backend: WhooshBackend) -> list[tuple]:
    conn = sqlite3.connect(backend.store.path)
    try:
        return sorted(conn.execute(
            "SELECT item_id, valid_from, valid_until, version_id, firm_id, fee_type, name_key, content_key, "
            "category, currency, pricing_basis, amount_cents, cny_cents, ports FROM item").fetchall())
    finally:
        conn.close()


def _spans_postgres(session) -> list[tuple]:
    return sorted(tuple(r) for r in session.execute(text(
        "SELECT item_id, to_char(valid_from, 'YYYY-MM-DD'), to_char(valid_until, 'YYYY-MM-DD'), version_id, "
        "firm_id, fee_type, name_key, content_key, category, currency, pricing_basis, amount_cents, cny_cents, "
        "ports FROM search.span")).all())


def _assert_same_answers(whoosh, postgres, queries):
    assert whoosh.live_item_ids() == postgres.live_item_ids()
    for q in queries:
        assert _matches(whoosh, q) == _matches(postgres, q), q
    pages = itertools.cycle([("relevance", 1, 20), ("amount", 2, 7), ("amount_desc", 1, 20), ("relevance", 3, 5)])
    for (q, filters), (sort, page, per_page) in zip(itertools.product(queries[::2], FILTERS), pages):
        args = (parse(q), filters, sort, page, per_page)
        assert whoosh.search(*args) == postgres.search(*args), (q, filters, sort, page)


@POSTGRES_BACKEND
def test_both_backends_give_the_same_answers_on_a_random_registry(app, session, tmp_path, monkeypatch):
    postgres = get_backend()
    assert postgres.name == "postgres"
    monkeypatch.setattr(pg_store, "_ITEMS_PER_ROUND", 3)  # a firm's batch publish indexed in rounds
    item_ids = _random_registry(session, seed=20261125)
    whoosh = WhooshBackend(tmp_path / "whoosh", db.engine, app.config["EXCHANGE_RATES"], registry.today)
    whoosh.rebuild()
    queries = _queries(session)
    # Built item by item by the publishes' own transactions, against Whoosh's bulk build.
    assert _spans_postgres(session) == _spans_whoosh(whoosh)
    _assert_same_answers(whoosh, postgres, queries)
    assert any(postgres.search(parse(q), {}, "relevance", 1, 5).total for q in queries)

    touched = _random_changes(session, item_ids, seed=99)
    whoosh.index_items(touched)  # what Whoosh's after-commit hook does (this app's backend is postgres)
    assert _spans_postgres(session) == _spans_whoosh(whoosh)
    _assert_same_answers(whoosh, postgres, queries + ["重箱", "夜间吊箱"])

    later = registry.today() + timedelta(days=16)  # the announced changes are in force
    for backend in (whoosh, postgres):
        monkeypatch.setattr(backend, "today", lambda: later)
    _assert_same_answers(whoosh, postgres, ["费", "重箱", "THC", "堆场"])

    assert postgres.rebuild() == whoosh.rebuild()  # rebuilt as of that day: spans that ended are left out
    assert _spans_postgres(session) == _spans_whoosh(whoosh)
    _assert_same_answers(whoosh, postgres, ["费", "重箱", "吊箱"])


@POSTGRES_BACKEND
def test_firm_names_in_memory_match_exactly_what_their_tsvectors_match(app, session):
    _random_registry(session, seed=5, n_firms=30)
    rows = session.execute(text("SELECT num, body FROM search.text WHERE kind = 'f'")).all()
    names = pg_firms.FirmNames.build(rows)
    assert len(names) == 30
    terms = [t for q in _queries(session) + ["深圳前海", "Shenzhen", "co", "海通 ltd", "有限公司", "演示", "限公"]
             for t in parse(q).terms]
    for term in terms:
        exact, _ = pg_tokens.term_queries(term)
        expected = set(session.execute(text(
            "SELECT num FROM search.text WHERE kind = 'f' AND tokens @@ CAST(:q AS tsquery)"), {"q": exact}).scalars())
        assert set(names.match(term)) == expected, term.text
    assert any(len(names.match(term)) for term in terms)


@POSTGRES_BACKEND
def test_a_renamed_firm_is_found_by_its_new_name_in_every_process(app, session):
    firm = make_firm("offport_yard", ports=("YANTIAN",), name_zh="深圳旧名堆场有限公司")
    user = make_user("publisher", firm)
    publish(firm, user, fee_type="LOLO", name_zh="吊箱费", amount="180")
    other = make_firm("offport_yard", ports=("YANTIAN",), name_zh="深圳别家堆场有限公司")
    publish(other, make_user("publisher", other), fee_type="LOLO", name_zh="吊箱费", amount="190")
    session.commit()
    backend = get_backend()
    reader = pg_store.PgStore(db.engine)  # another process, firm names loaded now
    today = registry.today()

    def found(store, q):
        with store.reading() as conn:
            matches = store.columns.current_and_matches(conn, parse(q).terms)[1]
        return {h.item_id for h in store.search(matches, {}, "relevance", 1, 10, today)[0]}

    assert len(found(reader, "旧名")) == 1 and len(found(reader, "堆场有限")) == 2
    firms.update_profile(session, firm, {"name_zh": "深圳新名堆场有限公司"}, make_user("admin"))
    publish(firm, user, fee_type="CLEAN", name_zh="洗箱费", amount="80")  # its texts are written with it
    session.commit()
    assert found(reader, "旧名") == set()
    assert len(found(reader, "新名")) == 2 and len(found(reader, "新名堆场")) == 2
    assert len(found(reader, "堆场有限")) == 3
    assert found(reader, "新名") == {h.item_id for h in backend.search(parse("新名"), {}, "relevance", 1, 10).hits}


@POSTGRES_BACKEND
def test_phrases_of_texts_beyond_a_tsvectors_positions_match_as_in_whoosh(app, session, tmp_path):
    # A tsvector keeps 256 positions per lexeme: "作业" 300 times loses its last ones, so this
    # text's phrases are checked on its body (as Whoosh checks every text's).
    firm = make_firm("terminal", ports=("CHIWAN",))
    user = make_user("publisher", firm)
    long_item = publish(firm, user, fee_type="THC", name_zh="码头作业费", amount="990", ports="CHIWAN",
                        service_content="装卸作业" * 300 + "冷藏箱插电监控，堆场，场吊")
    publish(firm, user, fee_type="DOC", name_zh="文件费", amount="300", ports="CHIWAN",
            service_content="冷藏箱作业")
    session.commit()
    assert session.execute(text("SELECT count(*) FROM search.text WHERE verify")).scalar_one() == 1
    whoosh = WhooshBackend(tmp_path / "whoosh", db.engine, app.config["EXCHANGE_RATES"], registry.today)
    whoosh.rebuild()
    postgres = get_backend()
    for q in ("作业冷藏", "业冷藏箱", "插电监控", "冷藏箱插电", "堆场吊", "装卸作业装", "插电 THC", "监控冷藏", "冷藏箱"):
        expected = {h.item_id for h in whoosh.search(parse(q), {}, "relevance", 1, 10).hits}
        assert {h.item_id for h in postgres.search(parse(q), {}, "relevance", 1, 10).hits} == expected, q
    assert {h.item_id for h in postgres.search(parse("作业冷藏"), {}, "relevance", 1, 10).hits} == {long_item.id}
    # "堆场，场吊": pairs 堆场 and 场吊 follow each other though the text never has 堆场吊.
    assert {h.item_id for h in postgres.search(parse("堆场吊"), {}, "relevance", 1, 10).hits} == {long_item.id}
    assert postgres.search(parse("监控冷藏"), {}, "relevance", 1, 10).total == 0


def test_tsvector_positions_follow_the_pair_tokens():
    vector, verify = pg_tokens.tsvector("港外堆场 吊箱费 Handling", pinyin=False)
    assert not verify
    assert "'堆场':3" in vector and "'场吊':4" in vector and "'handl':7" in vector and "'箱'" in vector
    exact, loose = pg_tokens.term_queries(parse("堆场吊箱").terms[0])
    assert exact == "('堆场' <-> '场吊' <-> '吊箱')" and loose == "('堆场' & '场吊' & '吊箱')"
    assert pg_tokens.term_queries(parse("handling").terms[0]) == ("('handl' | 'py_handling')", None)
    with pytest.raises(ValueError):
        pg_tokens._quoted("x' | 'y")


@POSTGRES_BACKEND
def test_a_publish_is_indexed_by_its_own_transaction(app, session):
    firm = make_firm("offport_yard", ports=("YANTIAN",))
    user = make_user("publisher", firm)
    publish(firm, user, fee_type="LOLO", name_zh="港外堆场吊箱费", amount="180")
    session.commit()
    item = publish(firm, user, fee_type="CLEAN", name_zh="夜间特别洗箱费", amount="80")
    inside = session.execute(text("SELECT count(*) FROM search.span WHERE item_id = :i"), {"i": item.id}).scalar_one()
    assert inside == 1  # written by the publishing transaction...
    assert get_backend().search(parse("特别洗箱"), {}, "relevance", 1, 10).total == 0  # ...and invisible outside it
    session.rollback()
    assert session.execute(text("SELECT count(*) FROM search.span")).scalar_one() == 1
    assert session.execute(text("SELECT count(*) FROM search.text WHERE body LIKE '%特别洗箱%'")).scalar_one() == 0
    assert get_backend().search(parse("特别洗箱"), {}, "relevance", 1, 10).total == 0
    publish(firm, user, fee_type="CLEAN", name_zh="夜间特别洗箱费", amount="80")
    session.commit()
    assert get_backend().search(parse("特别洗箱"), {}, "relevance", 1, 10).total == 1


@POSTGRES_BACKEND
def test_a_failed_index_write_fails_the_publish_and_changes_nothing(app, session):
    firm = make_firm("terminal", ports=("CHIWAN",))
    user = make_user("publisher", firm)
    publish(firm, user, fee_type="THC", name_zh="码头作业费", amount="990", ports="CHIWAN")
    session.commit()
    other = db.engine.connect()
    held = other.begin()
    other.execute(text("LOCK TABLE search.span IN ACCESS EXCLUSIVE MODE"))  # e.g. an operator's maintenance
    try:
        session.execute(text("SET LOCAL lock_timeout = '200ms'"))
        with pytest.raises(OperationalError):
            publish(firm, user, fee_type="DOC", name_zh="赤湾文件费", amount="300", ports="CHIWAN")
        session.rollback()
    finally:
        held.rollback()
        other.close()
    assert session.scalar(select(FeeItemVersion).where(FeeItemVersion.name_zh == "赤湾文件费")) is None
    assert get_backend().search(parse("文件费"), {}, "relevance", 1, 10).total == 0
    publish(firm, user, fee_type="DOC", name_zh="赤湾文件费", amount="300", ports="CHIWAN")
    session.commit()
    assert get_backend().search(parse("文件费"), {}, "relevance", 1, 10).total == 1


@POSTGRES_BACKEND
def test_readers_see_changes_committed_out_of_order(app, session):
    """A change numbered first but committed last is still seen: a sequence number alone
    would have been skipped past."""
    yards = [make_firm("offport_yard", ports=("YANTIAN",)) for _ in range(2)]
    users = [make_user("publisher", yard) for yard in yards]
    items = [publish(yard, user, fee_type="LOLO", name_zh="吊箱费", amount="180") for yard, user in zip(yards, users)]
    session.commit()
    today = registry.today()
    reader = pg_store.PgStore(db.engine)  # another process, its columns loaded now
    matches = get_backend().matches(parse("吊箱"))
    assert [h.item_id for h in reader.search(matches, {}, "amount", 1, 10, today)[0]] == [items[0].id, items[1].id]

    def reprice(publishing, index, amount):
        item = publishing.get(FeeItem, items[index].id)
        registry.update_draft(publishing, item, {"amount": Decimal(amount)}, users[index], None)
        registry.publish_item(publishing, item, users[index], today)

    slow, fast = Session(db.engine), Session(db.engine)  # two publishers at once
    try:
        reprice(slow, 0, "300")  # its change is numbered first...
        reprice(fast, 1, "250")
        fast.commit()
        assert [h.item_id for h in reader.search(matches, {}, "amount_desc", 1, 10, today)[0]] == \
            [items[1].id, items[0].id]  # 250, 180
        slow.commit()  # ...and committed last
        assert [h.item_id for h in reader.search(matches, {}, "amount_desc", 1, 10, today)[0]] == \
            [items[0].id, items[1].id]  # 300, 250
        assert reader.search(matches, {}, "amount_desc", 1, 10, today) == \
            reader.search_sql(matches, {}, "amount_desc", 1, 10, today)
    finally:
        slow.close()
        fast.close()


@POSTGRES_BACKEND
def test_readers_far_behind_a_trimmed_change_log_reload(app, session, monkeypatch):
    monkeypatch.setattr(pg_store, "CHANGE_TRIM_EVERY", 2)
    monkeypatch.setattr(pg_store, "CHANGE_LOG_KEEP", 1)
    firm = make_firm("offport_yard", ports=("YANTIAN",))
    user = make_user("publisher", firm)
    publish(firm, user, fee_type="LOLO", name_zh="吊箱费", amount="180")
    session.commit()
    reader = pg_store.PgStore(db.engine)
    matches = get_backend().matches(parse("费"))
    today = registry.today()
    assert reader.search(matches, {}, "amount", 1, 10, today)[1] == 1
    for n in range(5):
        publish(firm, user, fee_type="CLEAN", name_zh="洗箱费", amount=str(80 + n))
        session.commit()
    assert session.execute(text("SELECT count(*) FROM search.change")).scalar_one() < 6
    assert session.execute(text("SELECT value FROM search.meta WHERE key = 'trimmed_xid'")).scalar() is not None
    assert reader.search(matches, {}, "amount", 1, 10, today) == reader.search_sql(matches, {}, "amount", 1, 10, today)
    assert reader.search(matches, {}, "amount", 1, 10, today)[1] == 6


@POSTGRES_BACKEND
def test_a_never_built_index_is_built_by_a_small_registrys_first_publish_only(app, session, runner):
    backend = get_backend()
    firm = make_firm("offport_yard", ports=("YANTIAN",))
    user = make_user("publisher", firm)
    backend.auto_build_max_items = 0  # a big registry: it waits for `feereg reindex`
    publish(firm, user, fee_type="LOLO", name_zh="吊箱费", amount="180")
    session.commit()
    assert not backend.built()
    with pytest.raises(Exception, match="feereg reindex"):
        backend.search(parse("吊箱"), {}, "relevance", 1, 10)
    backend.auto_build_max_items = 20_000  # a small one: built with its first publish
    publish(firm, user, fee_type="CLEAN", name_zh="洗箱费", amount="80")
    session.commit()
    assert backend.built()
    assert backend.search(parse("箱费"), {}, "relevance", 1, 10).total == 2
    session.execute(text("DELETE FROM search.span"))  # damaged behind the application's back
    session.commit()
    assert backend.live_item_ids() == set()
    result = runner.invoke(args=["reindex"])
    assert result.exit_code == 0, result.output
    assert "2 item spans indexed (postgres)" in result.output
    assert backend.search(parse("箱费"), {}, "relevance", 1, 10).total == 2


@POSTGRES_BACKEND
def test_a_rebuild_waits_for_publishes_and_searches_read_the_previous_build_meanwhile(app, session):
    firm = make_firm("offport_yard", ports=("YANTIAN",))
    user = make_user("publisher", firm)
    publish(firm, user, fee_type="LOLO", name_zh="吊箱费", amount="180")
    session.commit()
    backend = get_backend()
    publish(firm, user, fee_type="CLEAN", name_zh="洗箱费", amount="80")  # holds the shared lock, uncommitted
    done = threading.Event()
    counted = []

    def rebuild():
        with app.app_context():
            counted.append(backend.rebuild())
            done.set()

    worker = threading.Thread(target=rebuild)
    worker.start()
    try:
        assert not done.wait(0.5)  # waiting for the publish
        assert backend.search(parse("箱费"), {}, "relevance", 1, 10).total == 1
        session.commit()
        assert done.wait(10)
    finally:
        worker.join(10)
    assert counted == [2]  # the rebuild read the registry after the publish committed
    assert backend.search(parse("箱费"), {}, "relevance", 1, 10).total == 2


def test_postgres_backend_refuses_to_start_on_sqlite(tmp_path):
    config = {"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'r.sqlite'}",
              "SEARCH_DIR": str(tmp_path / "search"), "SEARCH_BACKEND": "postgres"}
    with pytest.raises(RuntimeError, match="must be PostgreSQL.*FEEREG_SEARCH_BACKEND=whoosh"):
        create_app(config)
    with pytest.raises(RuntimeError, match="unknown SEARCH_BACKEND 'elastic'"):
        create_app({**config, "SEARCH_BACKEND": "elastic"})
    assert create_app({**config, "SEARCH_BACKEND": "null"}).config["SEARCH_BACKEND"] == "null"

