"""Comparison, quote and search pages kept per process (services/result_cache.py): a kept
page is served only while none of the fee types it reads changed (or, for a search, while
the index answers the same), so after any change to the registry every page must be
exactly what rendering it afresh gives."""
import random

import pytest

from feereg.models import FeeItem, FeeType
from feereg.services import catalog, firms, registry, result_cache, snapshot

from .factories import D, catalog_file_with, days, make_firm, make_user, publish
from .test_snapshot import _random_registry, random_change

PAGES = [
    "/compare/THC", "/compare/THC?size=40&port=YANTIAN", "/compare/THC?sort=firm&dir=desc&lang=en",
    "/compare/DOC?unit=per_bl", "/compare/LOLO?category=offport_yard&page=2", "/compare/EIR?size=20",
    "/compare/STORAGE?lang=en",
    # A repeated argument: the first value counts, so these two are different pages.
    "/compare/THC?sort=firm&sort=amount", "/compare/THC?sort=amount&sort=firm",
    "/quote/results?port=YANTIAN&direction=export&count_20=2&count_40HQ=1&bills=2&storage_days=0",
    "/quote/results?port=YANTIAN&direction=import&count_40=1&bills=1&storage_days=12&lang=en",
    "/quote/results?port=SHEKOU&direction=import&count_40HQ=3&bills=1&storage_days=7&more=offport_yard",
    # Searches: every firm's name (随机), renamed and new firms' names, fee types with facets.
    "/search?q=随机", "/search?q=随机&sort=amount&lang=en", "/search?q=随机&page=2&sort=amount_desc",
    "/search?q=改名", "/search?q=Renamed&lang=en", "/search?q=新来",
    "/search?q=THC&port=SHEKOU", "/search?q=LOLO&category=offport_yard&lang=en", "/search?q=EIR&currency=USD",
]


@pytest.fixture
def admin(app):
    return make_user("admin")


@pytest.fixture
def kept_and_fresh(app, monkeypatch):
    """Pages as served (kept ones where the cache allows), and as rendered afresh."""
    client = app.test_client(use_cookies=False)
    served_from_kept = []
    lookup = result_cache.ResultCache.lookup

    def spy(cache, snap, key):
        found, valid = lookup(cache, snap, key)
        if valid and cache is result_cache._cache:
            served_from_kept.append(key)
        return found, valid

    monkeypatch.setattr(result_cache.ResultCache, "lookup", spy)

    def pages():
        served = {page: client.get(page) for page in PAGES}
        kept = result_cache._cache
        monkeypatch.setattr(result_cache, "_cache", result_cache.ResultCache(max_chars=0))  # keeps nothing
        try:
            fresh = {page: client.get(page) for page in PAGES}
        finally:
            monkeypatch.setattr(result_cache, "_cache", kept)
        for page in PAGES:
            assert served[page].status_code == fresh[page].status_code == 200, page
        return {p: served[p].get_data(as_text=True) for p in PAGES}, {p: fresh[p].get_data(as_text=True) for p in PAGES}

    pages.served_from_kept = served_from_kept
    return pages


@pytest.mark.search_backends
def test_a_kept_page_is_always_the_page_rendered_afresh(session, admin, kept_and_fresh, search_backend):
    rng = random.Random(20261124)
    _random_registry(rng, admin)
    session.commit()
    result_cache.clear()

    served, fresh = kept_and_fresh()
    assert served == fresh
    for step in range(21):
        random_change(session, rng, admin, step)
        served, fresh = kept_and_fresh()
        for page in PAGES:
            assert served[page] == fresh[page], (step, page)
    # Pages were served from what was kept across changes that did not touch their fee
    # types, and quotes across changes that left their firms listed as they were.
    assert len(kept_and_fresh.served_from_kept) >= 40
    assert result_cache._cache.served_by_page["same basis", "public.quote_results"] >= 5
    # Search pages: only ever on the index's same answer, never on the lineage alone.
    assert result_cache._cache.served_by_page["same basis", "public.search"] >= 20
    assert result_cache._cache.served_by_page["kept", "public.search"] == 0


def test_a_change_to_one_fee_type_leaves_the_others_kept(session, admin, kept_and_fresh, app):
    rng = random.Random(7)
    _random_registry(rng, admin)
    session.commit()
    result_cache.clear()
    kept_and_fresh()
    item = session.query(FeeItem).filter_by(fee_type_code="LOLO", status="published").first()
    item.amount = D("1234.56")
    registry.publish_item(session, item, admin, days(-1), allow_backdate=True)
    session.commit()
    kept_and_fresh.served_from_kept.clear()
    served, fresh = kept_and_fresh()
    assert served == fresh
    kept = {key[3][0][1] for key in kept_and_fresh.served_from_kept if key[0] == "public.compare"}
    assert kept == {"THC", "DOC", "EIR", "STORAGE"}  # LOLO's page was made again


def client_page(app, path):
    return app.test_client(use_cookies=False).get(path).get_data(as_text=True)


def test_a_catalog_change_is_shown_at_once(session, admin, kept_and_fresh, app, tmp_path):
    _random_registry(random.Random(3), admin)
    session.commit()
    result_cache.clear()
    before = client_page(app, "/compare/THC?lang=en")
    assert before == client_page(app, "/compare/THC?lang=en")  # kept
    path = catalog_file_with(tmp_path / "catalog.csv", "THC", name_en="Terminal handling, renamed")
    assert catalog.load_catalog(session, path) == (0, 1)
    session.commit()
    try:
        assert session.query(FeeType).filter_by(code="THC").one().name_en == "Terminal handling, renamed"
        after = client_page(app, "/compare/THC?lang=en")
    finally:  # the catalog is reference data, kept between tests
        assert catalog.load_catalog(session) == (0, 1)
        session.commit()
    # In the page's own heading (kept with the table), not only in its title.
    assert "<h1>Compare: Terminal handling, renamed" in after and "Terminal handling, renamed" not in before


def test_the_lineage_names_the_fee_types_each_refresh_touched(session, admin):
    firm = make_firm("shipping_line", name_zh="甲")
    publish(firm, admin, effective_from=days(-3), fee_type="THC", name_zh="", name_en="", unit="per_container",
            container_size="40", amount="100", ports="")
    session.commit()
    first = snapshot.current(session)
    doc = publish(firm, admin, effective_from=days(-3), fee_type="DOC", name_zh="", name_en="", unit="per_bl",
                  container_size="", amount="50", ports="")
    session.commit()
    second = snapshot.current(session)
    assert second.lineage is first.lineage
    assert second.lineage.fee_types_changed_since(first.generation, second.generation) == {"DOC"}
    registry.withdraw_item(session, doc, admin, registry.today())
    session.commit()
    third = snapshot.current(session)
    assert third.lineage.fee_types_changed_since(second.generation, third.generation) == {"DOC"}
    firms.update_profile(session, firm, {"name_zh": "乙"}, admin)
    session.commit()
    fourth = snapshot.current(session)
    assert fourth.generation == third.generation + 1
    assert fourth.lineage.fee_types_changed_since(third.generation, fourth.generation) is None  # any
    assert fourth.lineage.fee_types_changed_since(first.generation, second.generation) == {"DOC"}


def test_a_firm_changed_without_an_audited_action_shows_once_it_publishes(session, admin, app):
    """A script or a restore may change a firm behind the application's back; the snapshot
    reads the firm again when it next publishes, and nothing kept may show it as it was."""
    from sqlalchemy import text

    firm = make_firm("shipping_line", name_zh="旧名", name_en="Old Name Lines")
    publish(firm, admin, effective_from=days(-3), fee_type="THC", name_zh="", name_en="", unit="per_container",
            container_size="40", amount="100", ports="")
    session.commit()
    result_cache.clear()
    assert "Old Name Lines" in client_page(app, "/compare/THC?lang=en")
    session.execute(text("UPDATE firm SET name_en = 'New Name Lines' WHERE id = :id"), {"id": firm.id})
    session.commit()
    session.expire_all()
    publish(firm, admin, effective_from=days(-1), fee_type="DOC", name_zh="", name_en="", unit="per_bl",
            container_size="", amount="50", ports="")
    session.commit()
    page = client_page(app, "/compare/THC?lang=en")
    assert "New Name Lines" in page and "Old Name Lines" not in page


def test_a_search_page_shows_a_firm_changed_without_an_audited_action_at_once(session, admin, app):
    """A search reads its firms afresh: no publish needed, unlike the snapshot's pages."""
    from sqlalchemy import text

    firm = make_firm("shipping_line", name_zh="旧名", name_en="Old Name Lines")
    publish(firm, admin, effective_from=days(-3), fee_type="THC", name_zh="码头操作费", name_en="Terminal handling",
            unit="per_container", container_size="40", amount="100", ports="")
    session.commit()
    result_cache.clear()
    url = "/search?q=THC&lang=en"
    assert "Old Name Lines" in client_page(app, url)
    assert "Old Name Lines" in client_page(app, url)  # kept
    assert result_cache._cache.served_by_page["same basis", "public.search"] == 1
    session.execute(text("UPDATE firm SET name_en = 'New Name Lines', status = 'suspended' WHERE id = :id"),
                    {"id": firm.id})
    session.commit()
    page = client_page(app, url)
    assert "New Name Lines" in page and "Old Name Lines" not in page
    assert result_cache._cache.served_by_page["same basis", "public.search"] == 1


@pytest.mark.search_backends
def test_a_search_page_is_kept_while_the_index_answers_the_same(session, admin, app, search_backend):
    """The lineage does not follow the search index (Whoosh is written after the commit,
    `feereg reindex` rebuilds it): a kept search page is used only on the same answer."""
    from feereg.search import get_backend

    rng = random.Random(11)
    _random_registry(rng, admin)
    session.commit()
    result_cache.clear()
    url = "/search?q=LOLO&lang=en"
    first = client_page(app, url)
    assert client_page(app, url) == first
    assert result_cache._cache.served_by_page["same basis", "public.search"] == 1

    # A change to a fee type the search does not find: the same answer, the page kept.
    item = session.query(FeeItem).filter_by(fee_type_code="THC", status="published").first()
    item.amount = D("4321")
    registry.publish_item(session, item, admin, days(-1), allow_backdate=True)
    session.commit()
    assert client_page(app, url) == first
    assert result_cache._cache.served_by_page["same basis", "public.search"] == 2

    # The index loses an item without the registry changing: the page follows the index.
    lolo = session.query(FeeItem).filter_by(fee_type_code="LOLO", status="published").order_by(FeeItem.id).all()
    shown = len(lolo)
    assert f"{shown} fees found" in first
    get_backend().remove([lolo[0].id])
    after = client_page(app, url)
    assert f"{shown - 1} fees found" in after
    assert after != first and result_cache._cache.served_by_page["same basis", "public.search"] == 2
