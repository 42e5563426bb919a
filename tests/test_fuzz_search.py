"""Property-based tests of search input: the query parser raises nothing but its own
QueryError (with a message for the user), and the search, compare and quote pages, their
downloads and the API's search answer any query string without a server error.

Derandomized and few examples: the same inputs on every run, fast on both databases."""
from __future__ import annotations

from urllib.parse import quote as url_quote

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from feereg import codes
from feereg.search.query import MAX_QUERY_CHARS, MAX_TERMS, ParsedQuery, QueryError, parse
from feereg.services.quote_rules import SERVICES

from .api_world import build_world

FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.reuse, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

OPERATORS = ["AND", "OR", "NOT", "*", "?", "~", "^2", ":", "name_zh:", "fee_type:THC", "amount:[0 TO 100]", "(", ")",
             "[", "]", "{", "}", "\\", "/", "+", "-", '"', "'", "“", "”", "「", "」", "&&", "||", "!", "%", "_",
             "%25", "<script>", "' OR 1=1 --", "${x}", "{{7*7}}"]
WORDS = ["码头操作费", "THC", "盐田", "堆场", "thc", "ＴＨＣ", "文件 费", "吊箱", "40HQ", "Yantian", "doc fee",
         "港外堆场吊箱费", "㍻", "﷽", "😀", "🇨🇳", "👨‍👩‍👧", "é", "ﬀ", "İ", "ß"]
CHARS = st.one_of(
    st.characters(codec="utf-8", exclude_categories=("Cs",)),
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),  # CJK
    st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF),  # emoji
    st.characters(max_codepoint=0x1F),  # control characters
    st.sampled_from(["\u200b", "\u202e", "\ufeff", "\u3000", "\u0301", "\ufffd", "\x7f", "\x85", "\u2028"]),
)
#: Anything a browser can send: no lone surrogates (they cannot be encoded in a URL).
QUERIES = st.one_of(
    st.text(CHARS, max_size=40),
    st.lists(st.one_of(st.sampled_from(WORDS), st.sampled_from(OPERATORS), st.text(CHARS, max_size=6)),
             max_size=12).map(" ".join),
    st.text(CHARS, min_size=MAX_QUERY_CHARS - 5, max_size=MAX_QUERY_CHARS + 60),
    st.sampled_from(WORDS).map(lambda w: (w + " ") * 60),
    st.sampled_from(["㍻" * 200, "﷽" * 200, "码" * 200, "a" * 200, " ".join(["x"] * (MAX_TERMS + 1)), '"' * 199]),
)
#: What other callers may hand the parser: lone surrogates too.
ANY_TEXT = st.one_of(QUERIES, st.text(st.characters(), max_size=50),
                     st.text(st.characters(categories=["Cs"]), min_size=1, max_size=5))


@FUZZ
@given(raw=st.one_of(st.none(), ANY_TEXT))
def test_the_parser_raises_only_its_own_error(app, raw):
    try:
        parsed = parse(raw)
    except QueryError as refused:
        assert str(refused).strip()
        return
    assert isinstance(parsed, ParsedQuery)
    assert 1 <= len(parsed.terms) <= MAX_TERMS
    for term in parsed.terms:
        assert term.pieces and all(kind in ("cjk", "latin") and piece for kind, piece in term.pieces)
        term.text.encode("utf-8")  # no lone surrogate reaches a page or the index
    assert all(str(n).strip() for n in parsed.notices)


@pytest.fixture
def world(session):
    return build_world(session)


def _status_ok(response, allowed=(200,)):
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    assert response.status_code in allowed, (response.status_code, response.get_data(as_text=True)[:300])


FACET_VALUES = st.one_of(st.sampled_from(["", "THC", "DOC", "YANTIAN", "shipping_agent", "CNY", "market", "x"]),
                         st.text(CHARS, max_size=8))
PAGES = st.one_of(st.integers(-5, 10**12).map(str), st.sampled_from(["", "x", "1e9", "١", "0x10", " 2"]),
                  st.text(CHARS, max_size=4))


@FUZZ
@given(q=QUERIES, sort=st.one_of(st.sampled_from(["relevance", "amount", "amount_desc", ""]), st.text(max_size=5)),
       page=PAGES, facets=st.dictionaries(st.sampled_from(["fee_type", "category", "port", "currency",
                                                           "pricing_basis"]), FACET_VALUES, max_size=3),
       lang=st.sampled_from(["zh", "en"]))
def test_the_search_page_answers_any_query(client, world, q, sort, page, facets, lang):
    args = {"q": q, "sort": sort, "page": page, "lang": lang, **facets}
    response = client.get("/search", query_string=args)
    # A NUL in an address is refused before any page (feereg/web.py): no person types one.
    _status_ok(response, (200, 400) if any("\x00" in v for v in args.values()) else (200,))


@FUZZ
@given(q=QUERIES, fmt=st.sampled_from(["csv", "xlsx"]), sort=st.sampled_from(["relevance", "amount", "zzz"]))
def test_the_search_download_answers_any_query(client, world, q, fmt, sort):
    response = client.get(f"/search/download.{fmt}", query_string={"q": q, "sort": sort})
    _status_ok(response, (200, 400, 404))


@FUZZ
@given(q=QUERIES, extra=st.dictionaries(st.sampled_from(["fee_type", "port", "sort", "page", "per_page", "category",
                                                         "currency", "pricing_basis", "qq"]),
                                        st.one_of(FACET_VALUES, PAGES), max_size=3))
def test_the_api_search_answers_any_query_with_a_result_or_a_named_parameter(client, world, q, extra):
    response = client.get("/api/v1/search", query_string={"q": q, **extra})
    _status_ok(response, (200, 400))
    body = response.get_json()
    if response.status_code == 400:
        assert body["parameter"] in {"q", *extra}, body


@settings(FUZZ, max_examples=25)  # four pages per example
@given(raw=st.binary(max_size=60))
def test_raw_query_bytes_never_reach_a_server_error(client, world, raw):
    """Bytes a browser would never send: invalid UTF-8 (a lone surrogate's CESU bytes), NUL."""
    encoded = "".join(f"%{b:02X}" for b in raw)
    for path in ("/search", "/api/v1/search", "/compare/THC", "/quote/results"):
        response = client.get(f"{path}?q={encoded}&on={encoded}&page={encoded}&port={encoded}")
        assert response.status_code < 500, (path, raw)
    response = client.get("/search?q=%ED%A0%80%ED%B0%80+THC")
    _status_ok(response)


COMPARE_ARGS = {
    "unit": st.one_of(st.sampled_from(list(codes.UNITS) + ["", "any"]), st.text(CHARS, max_size=6)),
    "size": st.one_of(st.sampled_from(list(codes.CONTAINER_SIZES) + [""]), st.text(CHARS, max_size=4)),
    "cargo_scope": st.one_of(st.sampled_from(list(codes.CARGO_SCOPES) + ["", "general"]), st.text(max_size=4)),
    "port": st.one_of(st.sampled_from(list(codes.PORTS) + [""]), st.text(CHARS, max_size=6)),
    "category": st.one_of(st.sampled_from(list(codes.CATEGORIES) + [""]), st.text(max_size=6)),
    "on": st.one_of(st.dates().map(str), st.sampled_from(["", "2026-02-30", "0001-01-01", "9999-12-31", "today",
                                                          "2025-6-1", "20250601"]), st.text(CHARS, max_size=10)),
    "sort": st.one_of(st.sampled_from(["amount", "firm", ""]), st.text(max_size=5)),
    "dir": st.sampled_from(["asc", "desc", "", "sideways"]),
    "item": st.one_of(st.integers(-1, 10**20).map(str), st.text(max_size=4)),
    "page": PAGES,
}


@FUZZ
@given(code=st.one_of(st.sampled_from(["THC", "DOC", "LOLO", "thc", "NOPE"]), st.text(CHARS, min_size=1, max_size=8)),
       args=st.fixed_dictionaries({}, optional=COMPARE_ARGS), download=st.sampled_from(["", "csv", "xlsx"]))
def test_compare_answers_any_arguments(client, world, code, args, download):
    path = f"/compare/{url_quote(code, safe='')}" + (f"/download.{download}" if download else "")
    response = client.get(path, query_string=args)
    _status_ok(response, (200, 400, 404))
    picked = client.get("/compare", query_string={"fee_type": code, **args})
    _status_ok(picked, (200, 302))


COUNTS = st.one_of(st.integers(-3, 1000).map(str), st.sampled_from(["", "x", "1.5", "1e3", "٣", "99999999999999999999"]))
QUOTE_ARGS = {
    "port": st.one_of(st.sampled_from(list(codes.PORTS) + [""]), st.text(CHARS, max_size=6)),
    "direction": st.one_of(st.sampled_from(list(codes.DIRECTIONS) + [""]), st.text(max_size=6)),
    "count_20": COUNTS, "count_40": COUNTS, "count_40HQ": COUNTS, "count_45": COUNTS, "bills": COUNTS,
    "storage_days": COUNTS,
    "cargo_scope": st.one_of(st.sampled_from(list(codes.CARGO_SCOPES) + ["general", ""]), st.text(max_size=6)),
    "services": st.lists(st.one_of(st.sampled_from(sorted(SERVICES)), st.text(max_size=6)), max_size=4),
    "on": COMPARE_ARGS["on"],
}


@FUZZ
@given(args=st.fixed_dictionaries({}, optional=QUOTE_ARGS))
def test_the_quote_answers_any_shipment(client, world, args):
    form = client.get("/quote", query_string=args)
    _status_ok(form, (200, 400))
    response = client.get("/quote/results", query_string=args)
    _status_ok(response, (200, 400))
