"""The search page: results, facets, highlighting, and every hostile query answered
with a message (never a 500) — against every search backend (tests/conftest.py)."""
from __future__ import annotations

import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from feereg.search import get_backend
from feereg.services import firms

from .factories import make_firm, make_user, publish

pytestmark = pytest.mark.search_backends


def lose_index(backend) -> None:
    """The index is gone: Whoosh's directory deleted; the PostgreSQL tables never built."""
    if backend.name == "postgres":
        with backend.engine.begin() as conn:
            conn.execute(text("DELETE FROM search.meta"))
    else:
        shutil.rmtree(backend.directory)


@contextmanager
def damaged_index(backend):
    """Whoosh's files overwritten with garbage; a PostgreSQL table out of reach."""
    if backend.name == "postgres":
        with backend.engine.begin() as conn:
            conn.execute(text("ALTER TABLE search.text RENAME TO text_damaged"))
        try:
            yield
        finally:
            with backend.engine.begin() as conn:
                conn.execute(text("ALTER TABLE search.text_damaged RENAME TO text"))
    else:
        for path in Path(backend.directory).iterdir():
            path.write_bytes(b"\x00garbage" * 100)
        yield


@pytest.fixture
def registry_items(session):
    yard = make_firm("offport_yard", ports=("YANTIAN",), name_zh="盐田<b>堆场</b>公司")
    user = make_user("publisher", yard)
    lolo = publish(yard, user, fee_type="LOLO", name_zh="港外堆场吊箱费", name_en="Yard lift on/off",
                   unit="per_container", amount="180", ports="YANTIAN")
    clean = publish(yard, user, fee_type="CLEAN", name_zh="洗箱费", name_en="Container clean",
                    unit="per_container", amount="60", ports="YANTIAN")
    session.commit()
    return yard, lolo, clean


def page(client, url: str) -> tuple[int, str]:
    response = client.get(url)
    return response.status_code, response.get_data(as_text=True)


def test_results_link_to_firm_and_item_history_with_highlights(client, registry_items):
    yard, lolo, clean = registry_items
    status, body = page(client, "/search?q=吊箱")
    assert status == 200
    assert f'href="/items/{lolo.id}"' in body and f'href="/firms/{yard.credit_code}"' in body
    assert "港外堆场<mark>吊箱</mark>费" in body
    assert f'href="/items/{clean.id}"' not in body


def test_a_suspended_firms_fees_are_marked(client, session, registry_items):
    yard, _lolo, _clean = registry_items
    assert "已暂停" not in page(client, "/search?q=吊箱")[1]
    firms.set_status(session, yard, "suspended", "未按规定公示", make_user("admin"))
    session.commit()
    assert 'class="tag warn">已暂停' in page(client, "/search?q=吊箱")[1]


def test_english_page_and_stemmed_highlight(client, registry_items):
    status, body = page(client, "/search?q=cleaning&lang=en")
    assert status == 200
    assert "Container <mark>clean</mark>" in body
    assert "1 fees found" in body or "1 fee" in body


def test_markup_in_names_and_queries_is_escaped(client, registry_items):
    status, body = page(client, "/search?q=堆场")
    assert status == 200
    assert "<b>" not in body
    assert "&lt;b&gt;<mark>堆场</mark>&lt;/b&gt;" in body  # the firm's name, escaped around the mark
    status, body = page(client, '/search?q=<script>alert(1)</script>"><img src=x>')
    assert status == 200
    assert "<script>alert" not in body and "<img src=x>" not in body


@pytest.mark.parametrize("query, message", [
    ('"unbalanced', "quotation mark"),
    ("*", "wildcards"),
    ("x" * 10_000, "too long"),
    ("THC\x1b\x07", "control characters"),
    ("", "Type a fee"),
    ("   ", "Type a fee"),
    ("a b c d e f g h i j", "at most"),
    ("?*!~^()[]{}", "wildcards"),
])
def test_hostile_queries_get_a_message(client, registry_items, query, message):
    status, body = page(client, "/search?lang=en&q=" + __import__("urllib.parse").parse.quote(query))
    assert status == 200
    assert message in body


def test_facet_links_combine_and_unknown_filter_values_are_ignored(client, registry_items):
    status, body = page(client, "/search?q=费&lang=en")
    assert status == 200
    links = re.findall(r'href="(/search\?[^"]+)"', body)
    port_link = next(link for link in links if "port=YANTIAN" in link).replace("&amp;", "&")
    status, body = page(client, port_link)
    assert "2 fees found" in body
    status, body = page(client, port_link + "&fee_type=CLEAN")
    assert "1 fees found" in body
    status, body = page(client, "/search?q=费&lang=en&fee_type=%27;drop&port=NOWHERE&page=99999&sort=evil")
    assert status == 200 and "2 fees found" in body


def test_sort_by_amount_on_the_page(client, registry_items):
    yard, lolo, clean = registry_items
    _, body = page(client, "/search?q=费&sort=amount")
    assert body.index(f"/items/{clean.id}") < body.index(f"/items/{lolo.id}")
    _, body = page(client, "/search?q=费&sort=amount_desc")
    assert body.index(f"/items/{lolo.id}") < body.index(f"/items/{clean.id}")


def test_missing_index_gives_a_message_and_reindex_repairs(client, runner, registry_items):
    lose_index(get_backend())
    status, body = page(client, "/search?q=吊箱&lang=en")
    assert status == 503 and "not available" in body
    result = runner.invoke(args=["reindex"])
    assert result.exit_code == 0, result.output
    status, body = page(client, "/search?q=吊箱&lang=en")
    assert "1 fees found" in body


def test_corrupt_index_gives_a_message_not_a_500(client, registry_items):
    with damaged_index(get_backend()):
        status, body = page(client, "/search?q=吊箱&lang=en")
    assert status == 503 and "not available" in body


def test_site_search_box_goes_to_the_search_page(client, registry_items):
    _, body = page(client, "/")
    assert 'action="/search"' in body
