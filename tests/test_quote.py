"""Quoting a shipment across firms, through the database and the pages."""
import re

import pytest

from feereg.services import quote, registry
from feereg.services.quote import Shipment

from .factories import D, days, make_firm, make_user, publish

pytestmark = pytest.mark.usefixtures("english")

EXPORT = Shipment(port="YANTIAN", direction="export", containers={"20": 2, "40": 1}, bills=1)


@pytest.fixture
def admin(app):
    return make_user("admin")


def fee(firm, actor, code, amount, unit, size="", effective_from=None, **kw):
    values = dict(fee_type=code, name_zh="", name_en="", unit=unit, container_size=size, amount=str(amount),
                  ports="")
    values.update(kw)
    return publish(firm, actor, effective_from=effective_from or days(-30), **values)


def line_schedule(firm, actor, *, thc20=None, thc40=None, thc_teu=None, doc=450, eir=50, seal=30, manifest=100):
    if thc20 is not None:
        fee(firm, actor, "THC", thc20, "per_container", "20")
    if thc40 is not None:
        fee(firm, actor, "THC", thc40, "per_container", "40")
    if thc_teu is not None:
        fee(firm, actor, "THC", thc_teu, "per_teu")
    for code, amount, unit in (("DOC", doc, "per_bl"), ("EIR", eir, "per_container"), ("SEAL", seal, "per_container"),
                               ("MANIFEST", manifest, "per_bl")):
        if amount is not None:
            fee(firm, actor, code, amount, unit)


@pytest.fixture
def lines(session, admin):
    a = make_firm("shipping_line", name_zh="甲船公司")
    b = make_firm("shipping_line", name_zh="乙船公司")
    c = make_firm("shipping_line", name_zh="丙船公司")
    elsewhere = make_firm("shipping_line", ports=("SHEKOU",), name_zh="蛇口船公司")
    suspended = make_firm("shipping_line", name_zh="暂停船公司")
    # A: THC by size; 2 × 500 + 800 + DOC 450 + EIR 3 × 50 + SEAL 3 × 30 + MANIFEST 100 = 2,590
    line_schedule(a, admin, thc20=500, thc40=800)
    fee(a, admin, "THC", 9999, "per_container", "20", direction="import")  # not for an export
    fee(a, admin, "DO", 9999, "per_bl")                                     # DO is expected on imports only
    # B: THC per TEU; 4 TEU × 400 + 500 + 3 × 40 + 3 × 20 + 100 = 2,380
    line_schedule(b, admin, thc_teu=400, doc=500, eir=40, seal=20)
    # C: cheapest, but publishes no EIR, seal or manifest fee
    line_schedule(c, admin, thc20=300, thc40=600, doc=300, eir=None, seal=None, manifest=None)
    line_schedule(elsewhere, admin, thc20=1, thc40=1)
    line_schedule(suspended, admin, thc20=1, thc40=1)
    suspended.status = "suspended"
    session.commit()
    return a, b, c


def group(result, category):
    return next(g for g in result.groups if g.category == category).quotes


def test_lines_are_totalled_itemised_and_ranked_cheapest_first(session, lines):
    a, b, c = lines
    result = quote.quote_shipment(session, EXPORT)
    quotes = group(result, "shipping_line")
    assert [q.firm.id for q in quotes] == [b.id, a.id, c.id]
    assert [q.total_cny for q in quotes] == [D("2380.00"), D("2590.00"), D("1500.00")]
    assert [q.rank for q in quotes] == [1, 2, 3]
    first = quotes[0]
    teu_line = next(line for line in first.lines if line.fee_type_code == "THC")
    assert (teu_line.quantity, teu_line.unit_amount, teu_line.total) == (D(4), D("400.00"), D("1600.00"))
    assert "4 TEU" in str(teu_line.note)
    a_thc = sorted((line.version.container_size, line.quantity, line.total) for line in quotes[1].lines
                   if line.fee_type_code == "THC")
    assert a_thc == [("20", D(2), D("1000.00")), ("40", D(1), D("800.00"))]
    assert not any(line.fee_type_code == "DO" for line in quotes[1].lines)


def test_missing_fees_are_listed_and_rank_after_complete_quotes(session, lines):
    _a, _b, c = lines
    quotes = group(quote.quote_shipment(session, EXPORT), "shipping_line")
    incomplete = quotes[-1]
    assert incomplete.firm.id == c.id and not incomplete.complete
    assert sorted(m.fee_type for m in incomplete.missing) == ["EIR", "MANIFEST", "SEAL"]
    assert all(q.complete for q in quotes[:2])


def test_only_firms_that_could_serve_the_port_are_quoted(session, lines):
    names = {q.firm.name_zh for q in quote.quote_shipment(session, EXPORT).quotes}
    assert names == {"甲船公司", "乙船公司", "丙船公司"}
    shekou = quote.quote_shipment(session, Shipment("SHEKOU", "export", {"20": 1}))
    assert {q.firm.name_zh for q in shekou.quotes} == {"蛇口船公司"}


def test_a_missing_size_is_reported(session, lines):
    a, _b, _c = lines
    quotes = group(quote.quote_shipment(session, Shipment("YANTIAN", "export", {"40": 1, "45": 1})), "shipping_line")
    a_quote = next(q for q in quotes if q.firm.id == a.id)
    assert [(m.fee_type, m.sizes) for m in a_quote.missing] == [("THC", ["45"])]


def test_import_direction_uses_import_items(session, admin):
    firm = make_firm("shipping_line")
    fee(firm, admin, "THC", 500, "per_container", direction="export")
    fee(firm, admin, "THC", 650, "per_container", direction="import")
    fee(firm, admin, "DO", 200, "per_bl")
    session.commit()
    imported = quote.quote_shipment(session, Shipment("YANTIAN", "import", {"20": 1}, bills=2)).quotes[0]
    assert sorted((line.fee_type_code, line.total) for line in imported.lines) == \
        [("DO", D("400.00")), ("THC", D("650.00"))]
    assert "MANIFEST" not in [m.fee_type for m in imported.missing]  # an export-only expectation


def test_per_declaration_and_services(session, admin):
    broker = make_firm("customs_broker")
    fee(broker, admin, "CUSTOMS", 150, "per_declaration")
    session.commit()
    without = quote.quote_shipment(session, EXPORT)
    assert "customs_broker" not in [g.category for g in without.groups]
    shipment = Shipment("YANTIAN", "export", {"20": 1}, bills=3, services=frozenset({"customs"}))
    broker_quote = group(quote.quote_shipment(session, shipment), "customs_broker")[0]
    assert [(line.quantity, line.total) for line in broker_quote.lines] == [(D(3), D("450.00"))]


def test_storage_days_are_priced_by_tiers(session, admin):
    yard = make_firm("offport_yard")
    fee(yard, admin, "LOLO", 100, "per_container")
    fee(yard, admin, "STORAGE", 20, "per_container_day", tiers="free:3;4-10:20;11-:40")
    session.commit()
    shipment = Shipment("YANTIAN", "export", {"20": 2, "40": 1}, storage_days=12)
    yard_quote = group(quote.quote_shipment(session, shipment), "offport_yard")[0]
    storage = [line.total for line in yard_quote.lines if line.fee_type_code == "STORAGE"]
    assert storage == [D("0.00"), D("420.00"), D("240.00")]
    assert yard_quote.total_cny == D("960.00")  # 660 storage + 3 × 100 lift


def test_foreign_currency_is_converted_for_ranking(session, admin, app):
    app.config["EXCHANGE_RATES"] = [{"from": "2020-01-01", "rates": {"USD": "7.00"}}]
    usd = make_firm("trucking", name_zh="美元拖车")
    cny = make_firm("trucking", name_zh="人民币拖车")
    fee(usd, admin, "TRUCK", 100, "per_container", currency="USD")  # 3 × 700 = 2,100 CNY
    fee(cny, admin, "TRUCK", 800, "per_container")                  # 3 × 800 = 2,400 CNY
    session.commit()
    shipment = Shipment("YANTIAN", "export", {"20": 2, "40": 1}, services=frozenset({"trucking"}))
    quotes = group(quote.quote_shipment(session, shipment), "trucking")
    assert [(q.firm.name_zh, q.total_cny) for q in quotes] == [("美元拖车", D("2100.00")), ("人民币拖车", D("2400.00"))]
    assert quotes[0].totals_by_currency == {"USD": D("300.00")}


def test_the_quote_reads_the_schedule_as_of_a_date(session, admin):
    firm = make_firm("trucking")
    item = fee(firm, admin, "TRUCK", 800, "per_container", effective_from=days(-60))
    registry.withdraw_item(session, item, admin, days(-5), allow_backdate=True)
    session.commit()
    shipment = Shipment("YANTIAN", "export", {"20": 1}, services=frozenset({"trucking"}))
    assert quote.quote_shipment(session, shipment).quotes == []
    assert quote.quote_shipment(session, shipment, on=days(-10)).quotes[0].total_cny == D("800.00")


# --- the pages ------------------------------------------------------------------------------

def test_quote_page_shows_ranked_itemised_results(client, session, lines):
    a, b, c = lines
    response = client.get("/quote/results?lang=en&port=YANTIAN&direction=export&count_20=2&count_40=1"
                          "&count_40HQ=0&count_45=0&bills=1&storage_days=0&cargo_scope=general")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert page.index(b.name_en) < page.index(a.name_en) < page.index(c.name_en)
    assert "2,380.00" in page and "2,590.00" in page
    assert "a 40&#39; counts as 2 TEU" in page or "a 40' counts as 2 TEU" in page
    assert "Seal fee" in page  # listed as missing for C
    assert re.search(r'href="/items/\d+"', page) and f'href="/firms/{b.credit_code}"' in page
    assert " style=" not in page and "<script" not in page


def test_quote_form_and_bad_input(client, session):
    form = client.get("/quote?lang=en").get_data(as_text=True)
    assert 'name="count_40HQ"' in form and 'name="services"' in form and "csrf_token" not in form
    bad = client.get("/quote/results?lang=en&port=NOWHERE&direction=sideways&count_20=-1&count_40=abc&bills=0")
    assert bad.status_code == 200
    text = bad.get_data(as_text=True)
    assert "Not a valid choice" in text and "Not a valid integer value" in text and "between 1 and 99" in text
    empty = client.get("/quote/results?lang=en&port=YANTIAN&direction=export&bills=1").get_data(as_text=True)
    assert "Give at least one container." in empty
    huge = client.get("/quote/results?port=YANTIAN&direction=export&count_20=99999999999999999999&bills=1")
    assert huge.status_code == 200


def test_a_short_page_ranks_exactly_like_ranking_every_firm(session, lines, admin):
    # Ranked in SQL, itemised in Python for the page only: the page must be the head of
    # the full ranking, with the category's firm count.
    a, b, c = lines
    full = group(quote.quote_shipment(session, EXPORT, per_category=1000), "shipping_line")
    for size in (1, 2):
        result = quote.quote_shipment(session, EXPORT, per_category=size)
        page = next(g for g in result.groups if g.category == "shipping_line")
        assert [(q.firm.id, q.total_cny, q.rank) for q in page.quotes] == \
            [(q.firm.id, q.total_cny, q.rank) for q in full[:size]]
        assert page.total == 3


def test_tiered_storage_is_ranked_by_its_bands(session, admin):
    # Same flat amount, different bands: the SQL ranking must price the tiers, not the amount.
    dear = make_firm("offport_yard", name_zh="贵堆场")
    cheap = make_firm("offport_yard", name_zh="便宜堆场")
    for firm, tiers in ((dear, "free:1;2-:90"), (cheap, "free:5;6-:10")):
        fee(firm, admin, "LOLO", 100, "per_container")
        fee(firm, admin, "STORAGE", 50, "per_container_day", tiers=tiers)
    session.commit()
    shipment = Shipment("YANTIAN", "export", {"20": 1}, storage_days=7)
    page = group(quote.quote_shipment(session, shipment, per_category=1), "offport_yard")
    assert [(q.firm.name_zh, q.total_cny) for q in page] == [("便宜堆场", D("120.00"))]


def test_a_required_fee_no_firm_publishes_leaves_every_firm_incomplete(session, admin):
    # An import needs DO; no line publishes it, so none is complete and the cheapest leads.
    dear, cheap = make_firm("shipping_line", name_zh="贵"), make_firm("shipping_line", name_zh="便宜")
    for firm, amount in ((dear, 900), (cheap, 100)):
        fee(firm, admin, "THC", amount, "per_container")
        fee(firm, admin, "DOC", 50, "per_bl")
    fee(dear, admin, "EIR", 10, "per_container")   # dear has more of the required fees, still not all
    session.commit()
    shipment = Shipment("YANTIAN", "import", {"40": 1})
    page = group(quote.quote_shipment(session, shipment, per_category=1), "shipping_line")
    assert [(q.firm.name_zh, q.complete) for q in page] == [("便宜", False)]


def test_quote_page_lists_the_cheapest_few_and_opens_one_kind_further(client, session, admin):
    # 23 shipping lines, THC 20' from 100 upwards: the page lists the first 20 of the kind,
    # and "more" lists every one of that kind, in the same order, the same ranks.
    from feereg.views.public_compare import QUOTE_FIRMS_SHOWN

    firms = [make_firm("shipping_line", name_zh=f"船公司{n:02d}") for n in range(QUOTE_FIRMS_SHOWN + 3)]
    for n, firm in enumerate(firms):
        line_schedule(firm, admin, thc20=100 + n, thc40=200)
    session.commit()
    base = "/quote/results?lang=en&port=YANTIAN&direction=export&count_20=1&bills=1"
    page = client.get(base).get_data(as_text=True)
    listed = re.findall(r'href="/firms/(\w+)"', page)
    assert [code for code in dict.fromkeys(listed)] == [f.credit_code for f in firms[:QUOTE_FIRMS_SHOWN]]
    assert f"Showing the first {QUOTE_FIRMS_SHOWN} of {len(firms)} firms." in page
    more = re.search(r'href="([^"]*more=shipping_line[^"]*)"', page)
    assert more, "no link to list more shipping lines"
    opened = client.get(more.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert [code for code in dict.fromkeys(re.findall(r'href="/firms/(\w+)"', opened))] == \
        [f.credit_code for f in firms]
    assert "more=" not in re.search(r'href="([^"]*)"[^>]*>Show the first', opened).group(1)
    # An unknown kind is ignored, not an error.
    assert client.get(base + "&more=nonsense").status_code == 200
