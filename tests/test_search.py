"""Search end to end: real commits, the real hooks, a real index — Whoosh in the test's own
directory, or the PostgreSQL backend's tables — on SQLite and PostgreSQL, against every
backend the database carries (tests/conftest.py): the same assertions hold for each."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from feereg.models import FeeItemVersion
from feereg.search import get_backend
from feereg.search.query import parse
from feereg.services import history, registry

from .factories import days, make_firm, make_user, publish

pytestmark = pytest.mark.search_backends


def find(q: str, sort: str = "relevance", per_page: int = 100, **filters):
    return get_backend().search(parse(q), filters, sort, 1, per_page)


def ids(q: str, **filters) -> set[int]:
    return {hit.item_id for hit in find(q, **filters).hits}


@pytest.fixture
def fees(session):
    """A small registry: two yards and a shipping line, at two ports."""
    yard = make_firm("offport_yard", ports=("YANTIAN",), name_zh="深圳盐田港外堆场有限公司")
    line = make_firm("shipping_line", ports=("SHEKOU",), name_zh="蛇口远洋船务有限公司")
    yard2 = make_firm("offport_yard", ports=("SHEKOU",), name_zh="蛇口华南仓码有限公司")
    yard_user, line_user, yard2_user = make_user("publisher", yard), make_user("publisher", line), \
        make_user("publisher", yard2)
    items = {
        "lolo": publish(yard, yard_user, fee_type="LOLO", name_zh="港外堆场吊箱费", name_en="Yard lift on/off",
                        unit="per_container", amount="180", ports="YANTIAN"),
        "lolo_spaced": publish(yard2, yard2_user, fee_type="LOLO", name_zh="港外堆场 吊箱费", name_en="",
                               unit="per_container", amount="150", ports="SHEKOU"),
        "eir": publish(line, line_user, fee_type="EIR", name_zh="设备交接单费", name_en="EIR fee",
                       unit="per_container", amount="50", ports="SHEKOU"),
        "thc": publish(line, line_user, fee_type="THC", name_zh="码头操作费", name_en="Terminal handling",
                       unit="per_container", amount="1180", ports="SHEKOU"),
        # A firm's own name for a THC: found through the catalog, not its own words.
        "thc_own": publish(yard, yard_user, fee_type="THC", name_zh="装卸包干费", name_en="Lump sum",
                           unit="per_container", amount="900", ports="YANTIAN"),
        "clean": publish(yard2, yard2_user, fee_type="CLEAN", name_zh="洗箱费", name_en="Container clean",
                         unit="per_container", amount="80", currency="USD", ports="SHEKOU"),
        "doc": publish(line, line_user, fee_type="DOC", amount="450", ports="SHEKOU"),
    }
    session.commit()
    return {k: v.id for k, v in items.items()} | {"users": (yard_user, line_user, yard2_user)}


def test_chinese_partial_words_find_the_whole_name(fees):
    assert ids("堆场") >= {fees["lolo"], fees["lolo_spaced"]}
    assert ids("吊箱") == {fees["lolo"], fees["lolo_spaced"]}
    assert ids("交接单") == {fees["eir"]}
    assert ids("交接单") == ids("设备交接单费")
    assert ids("箱") >= {fees["lolo"], fees["clean"]}  # one character: single-character tokens


def test_space_between_chinese_characters_is_ignored(fees):
    # The text with a space is found by the query without one, and the other way round.
    assert ids("港外堆场吊箱费") == {fees["lolo"], fees["lolo_spaced"]}
    assert {fees["lolo"], fees["lolo_spaced"]} <= ids("港外堆场 吊箱费")
    assert ids("场吊") == {fees["lolo"], fees["lolo_spaced"]}  # the pair spans the space


def test_fee_type_code_and_catalog_names_are_synonyms(fees):
    thc = {fees["thc"], fees["thc_own"]}
    assert ids("THC") == thc
    assert ids("thc") == thc
    assert ids("码头操作费") == thc  # the catalog name finds the firm's own name too
    assert ids("Terminal handling charge") == thc
    assert ids("DOC") == {fees["doc"]}


def test_english_words_are_stemmed(fees):
    assert ids("cleaning") == {fees["clean"]}
    assert ids("cleaned containers") == {fees["clean"]}
    assert ids("handling") == {fees["thc"], fees["thc_own"]}


def test_mixed_chinese_and_english_terms_are_anded(fees):
    assert ids("盐田 THC") == {fees["thc_own"]}  # port and type
    assert ids("蛇口 THC") == {fees["thc"]}
    assert ids("cleaning 蛇口") == {fees["clean"]}
    assert ids("cleaning 盐田") == set()
    assert ids("THC费") == {fees["thc"], fees["thc_own"]}  # no space between the scripts


def test_pinyin_full_and_initials(fees):
    pytest.importorskip("pypinyin")
    assert {fees["lolo"], fees["lolo_spaced"]} <= ids("duichang")
    assert ids("mtczf") == {fees["thc"], fees["thc_own"]}


def test_unknown_words_find_nothing(fees):
    assert find("reefer").total == 0
    assert find("THC 不存在的费用").total == 0


def test_facet_counts_and_combined_filters(fees):
    result = find("费")
    assert result.total == 7
    facets = {name: dict(values) for name, values in result.facets.items()}
    assert facets["category"] == {"offport_yard": 4, "shipping_line": 3}
    assert facets["port"] == {"SHEKOU": 5, "YANTIAN": 2}
    assert facets["fee_type"] == {"LOLO": 2, "THC": 2, "EIR": 1, "CLEAN": 1, "DOC": 1}
    assert facets["currency"] == {"CNY": 6, "USD": 1}
    assert sum(dict(result.facets["pricing_basis"]).values()) == 7

    assert ids("费", category="offport_yard") == {fees["lolo"], fees["lolo_spaced"], fees["thc_own"], fees["clean"]}
    assert ids("费", category="offport_yard", port="SHEKOU") == {fees["lolo_spaced"], fees["clean"]}
    combined = find("费", category="offport_yard", port="SHEKOU", currency="USD")
    assert {h.item_id for h in combined.hits} == {fees["clean"]}
    assert dict(combined.facets["fee_type"]) == {"CLEAN": 1}
    assert find("费", fee_type="THC", port="SHEKOU").total == 1


def test_sort_by_amount_ranks_in_cny(fees):
    hits = find("费", sort="amount").hits
    assert [h.item_id for h in hits][:3] == [fees["eir"], fees["lolo_spaced"], fees["lolo"]]
    # 80 USD is ranked at its CNY value (about 570), between 450 and 900.
    order = [h.item_id for h in hits]
    assert order.index(fees["doc"]) < order.index(fees["clean"]) < order.index(fees["thc_own"])
    assert [h.item_id for h in find("费", sort="amount_desc").hits][0] == fees["thc"]


def test_pagination_pages_through_every_hit(fees):
    backend = get_backend()
    seen = []
    for page in (1, 2, 3):
        seen += [h.item_id for h in backend.search(parse("费"), {}, "amount", page, 3).hits]
    assert len(seen) == 7 and len(set(seen)) == 7


def test_relevance_puts_name_matches_before_other_matches(fees):
    # "堆场" is in two fee names and also the category name of every yard's items.
    order = [h.item_id for h in find("堆场").hits]
    assert set(order[:2]) == {fees["lolo"], fees["lolo_spaced"]}
    assert len(order) > 2


def test_withdraw_removes_from_results_and_republish_brings_back(session, fees):
    from feereg.models import FeeItem

    yard_user = fees["users"][0]
    item = session.get(FeeItem, fees["lolo"])
    registry.withdraw_item(session, item, yard_user, registry.today())
    session.commit()
    assert ids("吊箱") == {fees["lolo_spaced"]}
    assert fees["lolo"] not in ids("费")


def test_a_changed_name_is_searchable_after_commit_only(session, fees):
    from feereg.models import FeeItem

    yard_user = fees["users"][0]
    item = session.get(FeeItem, fees["thc_own"])
    values = {name: getattr(item, name) for name in ("fee_type_code", "name_zh", "name_en")}
    registry.update_draft(session, item, {**values, "name_zh": "重箱装卸费"}, yard_user, None)
    registry.publish_item(session, item, yard_user, registry.today())
    assert ids("装卸") == {fees["thc_own"]}  # not committed yet: the index still has the old name
    session.commit()
    assert ids("重箱装卸") == {fees["thc_own"]}


def test_a_future_change_is_found_only_from_its_effective_date(session, fees, monkeypatch):
    from feereg.models import FeeItem

    line_user = fees["users"][1]
    item = session.get(FeeItem, fees["doc"])
    registry.withdraw_item(session, item, line_user, days(40))
    session.commit()
    assert fees["doc"] in ids("DOC")  # announced, not yet in force
    backend = get_backend()
    monkeypatch.setattr(backend, "today", lambda: registry.today() + timedelta(days=41))
    assert fees["doc"] not in ids("DOC")


def test_index_and_database_agree_item_for_item(session, fees):
    from feereg.models import FeeItem

    users = fees["users"]
    registry.withdraw_item(session, session.get(FeeItem, fees["eir"]), users[1], registry.today())
    item = session.get(FeeItem, fees["doc"])
    registry.update_draft(session, item, {"amount": Decimal("500")}, users[1], None)
    registry.publish_item(session, item, users[1], days(30))  # a pending change: today's version stays
    session.commit()

    backend = get_backend()
    assert backend.rebuild() >= 6
    in_force = {v.item_id: v.id for v in session.scalars(
        history.versions_in_force(session, registry.today()).where(FeeItemVersion.kind == "publish"))}
    assert backend.live_item_ids() == set(in_force)
    hits = {h.item_id: h.version_id for h in find("费", per_page=100).hits}
    hits |= {h.item_id: h.version_id for h in find("DOC").hits}
    assert hits == in_force
    doc_version = session.get(FeeItemVersion, in_force[fees["doc"]])
    assert doc_version.amount == 450  # today's price, not the announced one


@pytest.mark.whoosh_only
def test_a_failed_index_write_loses_no_database_change_and_reindex_repairs(app, session, fees, runner, caplog):
    from whoosh import index as whoosh_index

    backend = get_backend()
    backend.writer_timeout = 0.05
    held = whoosh_index.open_dir(backend.directory, indexname="texts").writer()  # another writer holds the lock
    try:
        yard = make_firm("terminal", ports=("CHIWAN",))
        publish(yard, make_user("publisher", yard), fee_type="THC", name_zh="赤湾码头作业费", amount="990",
                ports="CHIWAN")
        session.commit()
    finally:
        held.cancel()
    assert "feereg reindex" in caplog.text
    assert session.scalar(select(FeeItemVersion).where(FeeItemVersion.name_zh == "赤湾码头作业费")) is not None
    assert ids("赤湾码头作业费") == set()
    result = runner.invoke(args=["reindex"])
    assert result.exit_code == 0, result.output
    assert "reindex:" in result.output
    assert len(ids("赤湾码头作业费")) == 1


@pytest.mark.whoosh_only
def test_posting_arrays_match_whoosh_own_results_across_segments_and_deletions(tmp_path, monkeypatch):
    # The fast block reader (search/postings.py) must give exactly what Whoosh's query gives.
    from whoosh import index as whoosh_index
    from whoosh.query import Term as WhooshTerm

    from feereg.search import postings
    from feereg.search.whoosh_backend import INDEX_NAME, make_schema

    ix = whoosh_index.create_in(tmp_path, make_schema(), indexname=INDEX_NAME)
    names = [f"深圳{district}货运代理有限公司" for district in ("盐田", "福田", "南山", "宝安")] * 80
    writer = ix.writer()
    for n, name in enumerate(names):
        writer.add_document(key=f"f:{n}", uni=name, pairs=name, pinyin="")
    writer.commit()
    writer = ix.writer()   # a second segment, and deletions in the first
    for n in range(0, 320, 7):
        writer.update_document(key=f"f:{n}", uni="蛇口堆场", pairs="蛇口堆场", pinyin="")
    writer.commit(merge=False)
    terms = (("pairs", "货运"), ("pairs", "盐田"), ("uni", "口"), ("pairs", "堆场"), ("pairs", "不在"), ("uni", "深"))
    monkeypatch.setattr(postings, "CACHE_MIN_POSTINGS", 1)   # every term through the segment cache

    def check():
        with ix.searcher() as searcher:
            for field, text in terms:
                expected = sorted(searcher.docs_for_query(WhooshTerm(field, text)))
                assert postings.postings(searcher, field, text).tolist() == expected, (field, text)
            return len(list(searcher.reader().leaf_readers())), searcher.reader().has_deletions()

    assert check() == (2, True)
    check()   # read again from the cache
    writer = ix.writer()   # more deletions in the cached segments: applied on each read
    for n in range(1, 320, 5):
        writer.delete_by_term("key", f"f:{n}")
    writer.commit(merge=False)
    check()


def test_an_amount_change_writes_no_text_and_a_new_name_only_its_own(session, fees, search_backend):
    """A publish that keeps every text finds the item as before and, on Whoosh, adds no
    document (no index commit); a new name adds its one text and finds the item by it."""
    from feereg.models import FeeItem

    backend = get_backend()

    def documents() -> int | None:  # Whoosh's own documents; the PostgreSQL backend keeps rows
        if search_backend != "whoosh":
            return None
        with backend._index().searcher() as searcher:
            return searcher.doc_count_all()

    yard_user = fees["users"][0]
    item = session.get(FeeItem, fees["lolo"])
    values = {name: getattr(item, name) for name in ("fee_type_code", "name_zh", "name_en")}
    before = documents()
    registry.update_draft(session, item, {**values, "amount": Decimal("185")}, yard_user, None)
    registry.publish_item(session, item, yard_user, registry.today())
    session.commit()
    assert documents() == before
    assert {h.item_id for h in find("吊箱", sort="amount").hits} >= {fees["lolo"]}
    assert ids("吊箱", port="YANTIAN") == {fees["lolo"]}
    registry.update_draft(session, item, {**values, "amount": Decimal("185"), "name_zh": "港外堆场提箱费"},
                          yard_user, None)
    registry.publish_item(session, item, yard_user, registry.today())
    session.commit()
    assert documents() == (None if before is None else before + 1)
    assert fees["lolo"] in ids("港外堆场提箱费")
