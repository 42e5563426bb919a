"""The in-memory columns answer exactly what the SQL over the item store answers, and
follow the store's changes made by another process — for each backend's store (Whoosh's
SQLite file, the PostgreSQL backend's span table)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feereg.search import get_backend
from feereg.search.pg_store import PgStore
from feereg.search.query import parse
from feereg.search.store import Store
from feereg.services import registry

from .factories import make_firm, make_user, publish

pytestmark = pytest.mark.search_backends

QUERIES = ["费", "堆场", "吊箱", "THC", "盐田", "蛇口 THC", "港外", "公司", "盐田 公司", "费 公司 蛇口", "cleaning",
           "DOC", "不存在", "华南"]
FILTERS = [{}, {"port": "SHEKOU"}, {"category": "offport_yard"}, {"currency": "USD"},
           {"category": "shipping_line", "port": "SHEKOU"}, {"fee_type": "THC"}]


@pytest.fixture
def many(session):
    """Several firms whose names share words, items with ties in amount and score."""
    spec = (("offport_yard", ("YANTIAN",), "盐田华南堆场有限公司"),
            ("offport_yard", ("SHEKOU",), "蛇口港外堆场有限公司"),
            ("shipping_line", ("SHEKOU", "YANTIAN"), "华南远洋船务有限公司"),
            ("forwarder", ("YANTIAN",), "盐田货运代理有限公司"))
    firms = [(make_firm(category, ports=ports, name_zh=name), ports) for category, ports, name in spec]
    fees = [("LOLO", "港外堆场吊箱费", "180", "CNY"), ("THC", "码头操作费", "900", "CNY"),
            ("DOC", "文件费", "450", "CNY"), ("CLEAN", "洗箱费", "80", "USD"), ("THC", "装卸包干费", "900", "CNY")]
    docs = {}
    for index, ((firm, firm_ports), fee) in enumerate(itertools.product(firms, fees)):
        user = make_user("publisher", firm)
        code, name, amount, currency = fee
        ports = firm_ports[index % len(firm_ports)] if index % 3 else ""
        item = publish(firm, user, fee_type=code, name_zh=name, unit="per_container", amount=amount,
                       currency=currency, ports=ports)
        if code == "DOC":
            docs[firm.id] = (item, user)
    session.commit()
    return docs


def _both(q, filters, sort, page, per_page):
    backend = get_backend()
    if backend.name == "postgres":  # as a search gets them: firm ids in a read-only array
        with backend.store.reading() as conn:
            matches = backend.store.columns.current_and_matches(conn, parse(q).terms)[1]
    else:
        matches = backend.matches(parse(q))
    today = registry.today()
    columns = backend.store.search(matches, filters, sort, page, per_page, today)
    sql = backend.store.search_sql(matches, filters, sort, page, per_page, today)
    return columns, sql


def test_columns_and_sql_give_the_same_hits_totals_and_facets(many):
    for q, filters, sort in itertools.product(QUERIES, FILTERS, ("relevance", "amount", "amount_desc")):
        for page, per_page in ((1, 20), (1, 3), (2, 3), (4, 5), (30, 5)):
            columns, sql = _both(q, filters, sort, page, per_page)
            assert columns == sql, (q, filters, sort, page, per_page)


def test_another_process_sees_changes_through_the_change_log(session, many):
    backend = get_backend()
    # Another process: its own columns, loaded now.
    other = PgStore(backend.engine) if backend.name == "postgres" else Store(backend.directory)
    matches = backend.matches(parse("文件费"))
    before = other.search(matches, {}, "amount", 1, 50, registry.today())
    assert before[1] == 4

    item, user = next(iter(many.values()))
    registry.withdraw_item(session, item, user, registry.today())
    session.commit()
    after = other.search(matches, {}, "amount", 1, 50, registry.today())
    assert after[1] == 3 and item.id not in {h.item_id for h in after[0]}
    assert after == backend.store.search_sql(matches, {}, "amount", 1, 50, registry.today())

    backend.rebuild()  # a new build: the other process reloads rather than patches
    assert other.search(matches, {}, "amount", 1, 50, registry.today()) == after


def test_phrase_texts_follow_a_renamed_firm_without_reading_every_text(tmp_path):
    from feereg.search.documents import Text

    store = Store(tmp_path)
    conn = store.create()
    store.write_texts(conn, [Text("f", "1", "深圳甲物流", False), Text("f", "2", "深圳乙物流", False)])
    conn.close()
    assert store.texts(["f:1"])["f:1"] == "深圳甲物流"   # the first read takes every text
    assert store._fresh is None
    conn = store.connect()
    store.write_texts(conn, [Text("f", "1", "深圳丙货运", False)])   # a firm renamed
    conn.close()
    texts = store.texts(["f:1"])
    assert texts["f:1"] == "深圳丙货运" and store._fresh == {"f:1"}   # only the asked key read again
    assert store.texts(["f:2"])["f:2"] == "深圳乙物流" and store._fresh == {"f:1", "f:2"}


def _column_rows(spec, first_id):
    """Store rows (item_id, version_id, firm_id, from, until, cny, group columns) from
    (item_id, cny, group) triples."""
    return [(item, first_id + n, 1, "2026-01-01", None, cny, group, 0, "THC", "shipping_line", "", "CNY", "fixed")
            for n, (item, cny, group) in enumerate(spec)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(0, 6), st.integers(0, 3)), min_size=1, max_size=60),
       st.lists(st.tuples(st.integers(1, 40), st.integers(0, 6), st.integers(0, 5)), max_size=30))
def test_a_change_places_its_rows_in_the_amount_orders_as_a_full_sort_would(before, changed):
    """A publish's rows are merged into the base's orders; ties of amount and item (an
    item published again at the same amount) must fall as the full sort puts them."""
    from feereg.search.columns import Columns, Groups

    groups = Groups()
    base = Columns.from_rows(_column_rows(before, 1), groups, "b", 0)
    grown = Groups()
    grown.ids, grown.rows = dict(groups.ids), list(groups.rows)
    dead = np.isin(base.item_id, np.array([item for item, _, _ in changed], dtype=np.int64))
    merged = Columns.from_rows(_column_rows(changed, 1000), grown, "b", 1, base=base, dead=dead)
    assert merged.asc.tolist() == np.lexsort((merged.item_id, merged.cny)).tolist()
    assert merged.desc.tolist() == np.lexsort((merged.item_id, -merged.cny)).tolist()
    # New groups give new group arrays; none new keeps the base's.
    assert (merged.garrays is base.garrays) == (len(grown.rows) == len(groups.rows))
    assert merged.garrays.size == len(grown.rows)
