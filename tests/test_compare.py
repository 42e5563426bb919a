"""Comparing one fee type across firms: the query, the statistics, rates, filters, the page."""
import json
import re
from datetime import date, timedelta

import pytest

from feereg.config import from_environment
from feereg.services import compare, rates, registry
from feereg.services.compare import percentile, summarise

from .factories import D, days, item_values, make_firm, make_user, publish

pytestmark = pytest.mark.usefixtures("english")


@pytest.fixture
def admin(app):
    return make_user("admin")


def thc(firm, actor, amount, size="40", effective_from=None, **kw):
    values = dict(fee_type="THC", name_zh="", name_en="", unit="per_container", container_size=size,
                  amount=str(amount))
    values.update(kw)
    return publish(firm, actor, effective_from=effective_from or days(-30), **values)


# --- statistics ----------------------------------------------------------------------------

def test_median_and_p90_interpolate_between_ranks():
    assert summarise([D("4"), D("1"), D("3"), D("2")]).median == D("2.50")
    assert percentile([D(1), D(2), D(3), D(4)], D("0.9")) == D("3.7")
    stats = summarise([D("100"), D("200"), D("300"), D("400"), D("1000")])
    assert (stats.min, stats.q1, stats.median, stats.q3, stats.p90, stats.max) == \
        (D("100"), D("200.00"), D("300.00"), D("400.00"), D("760.00"), D("1000"))
    assert summarise([]) is None
    assert summarise([D("7")]).p90 == D("7.00")


def test_comparison_ranks_every_firm_with_stats(session, admin):
    for amount in (400, 100, 1000, 300, 200):
        thc(make_firm("shipping_line"), admin, amount)
    session.commit()
    result = compare.compare_fee_type(session, "THC", unit="per_container", size="40")
    assert [r.amount_cny for r in result.rows] == [D("100.00"), D("200.00"), D("300.00"), D("400.00"), D("1000.00")]
    assert (result.stats.median, result.stats.p90, result.stats.max) == (D("300.00"), D("760.00"), D("1000.00"))
    assert result.firm_count == 5 and not result.mixed
    descending = compare.compare_fee_type(session, "thc", descending=True)
    assert descending.rows[0].amount_cny == D("1000.00")
    assert compare.compare_fee_type(session, "NOSUCH") is None


# --- exchange rates --------------------------------------------------------------------------

def test_foreign_amounts_convert_at_the_rate_in_force_on_the_date(session, admin):
    firm = make_firm("shipping_line")
    thc(firm, admin, "100", currency="USD", effective_from=days(-60))
    thc(make_firm("shipping_line"), admin, "750", effective_from=days(-15))
    session.commit()
    config = [{"from": days(-10).isoformat(), "rates": {"USD": "8.00"}},
              {"from": "2000-01-01", "rates": {"USD": "7.00", "HKD": "0.9"}}]
    now = compare.compare_fee_type(session, "THC", rates_config=config)
    assert [(r.version.currency, r.amount_cny) for r in now.rows] == [("CNY", D("750.00")), ("USD", D("800.00"))]
    before = compare.compare_fee_type(session, "THC", on=days(-20), rates_config=config)
    assert [(r.version.amount, r.amount_cny) for r in before.rows] == [(D("100.00"), D("700.00"))]
    assert before.rates.effective_from == date(2000, 1, 1)


def test_rates_accept_the_old_single_dict_form_and_the_environment(app):
    table = rates.rates_on(date(2020, 1, 1), {"as_of": "2026-11-01", "CNY": "1", "USD": "7.12"})
    assert table.to_cny(D("10"), "USD") == D("71.20") and table.to_cny(D("3"), "CNY") == D("3.00")
    assert table.to_cny(D("1"), "EUR") is None
    env = from_environment({"FEEREG_EXCHANGE_RATES": json.dumps([{"from": "2025-01-01", "rates": {"HKD": "0.92"}}])})
    assert rates.rates_on(date(2026, 1, 1), env["EXCHANGE_RATES"]).rate("HKD") == D("0.92")
    # the shipped default is dated and reads
    assert rates.rates_on(date(2025, 6, 1)).rate("USD") == D("7.30")
    with pytest.raises(rates.RateConfigError):
        rates.parse_rates([{"from": "soon", "rates": {"USD": "7"}}])
    with pytest.raises(rates.RateConfigError):
        rates.parse_rates([{"from": "2025-01-01", "rates": {"USD": "-1"}}])


# --- narrowing ------------------------------------------------------------------------------

def test_filters_narrow_by_unit_size_port_and_category(session, admin):
    line = make_firm("shipping_line", ports=("YANTIAN",), name_zh="盐田船公司")
    agent = make_firm("shipping_agent", ports=("SHEKOU",), name_zh="蛇口船代")
    both = make_firm("shipping_line", ports=("YANTIAN", "SHEKOU"), name_zh="两港船公司")
    thc(line, admin, 800, size="40", ports="")
    thc(line, admin, 500, size="20", ports="")
    thc(agent, admin, 700, size="", ports="")        # any size: applies to a 40' too
    thc(both, admin, 650, size="40", ports="SHEKOU")  # only at Shekou, though the firm serves both
    thc(both, admin, 999, size="", ports="SHEKOU")    # its any-size fallback: hidden by its 40' item
    thc(both, admin, 90, size="40", unit="per_teu", ports="SHEKOU")
    session.commit()

    def amounts(**kw):
        return sorted(r.version.amount for r in compare.compare_fee_type(session, "THC", **kw).rows)

    assert amounts(unit="per_container", size="40") == [D("650.00"), D("700.00"), D("800.00")]
    assert amounts(unit="per_container", size="20") == [D("500.00"), D("700.00"), D("999.00")]
    assert amounts(unit="per_container", size="40", port="YANTIAN") == [D("800.00")]
    assert amounts(unit="per_container", size="40", port="SHEKOU") == [D("650.00"), D("700.00")]
    assert amounts(unit="per_container", size="40", category="shipping_agent") == [D("700.00")]
    assert amounts(unit="per_teu") == [D("90.00")]
    assert compare.compare_fee_type(session, "THC").mixed


def test_cargo_scope_general_excludes_special_cargo(session, admin):
    firm = make_firm("shipping_line")
    thc(firm, admin, 800)
    thc(firm, admin, 1500, cargo_scope="reefer")
    session.commit()
    assert [r.version.amount for r in compare.compare_fee_type(session, "THC", cargo_scope="").rows] == [D("800.00")]
    assert [r.version.amount for r in compare.compare_fee_type(session, "THC", cargo_scope="reefer").rows] == \
        [D("1500.00")]
    assert len(compare.compare_fee_type(session, "THC").rows) == 2


def test_as_of_a_past_date_reads_the_version_then_in_force(session, admin):
    firm = make_firm("shipping_line")
    item = thc(firm, admin, 300, effective_from=days(-100))
    registry.update_draft(session, item, item_values(fee_type="THC", name_zh="", name_en="", unit="per_container",
                                                     container_size="40", amount="360"), admin, item.lock_version)
    registry.publish_item(session, item, admin, days(-10), allow_backdate=True)
    gone = thc(make_firm("shipping_line"), admin, 100, effective_from=days(-100))
    registry.withdraw_item(session, gone, admin, days(-5), allow_backdate=True)
    session.commit()
    assert [r.version.amount for r in compare.compare_fee_type(session, "THC", on=days(-50)).rows] == \
        [D("100.00"), D("300.00")]
    assert [r.version.amount for r in compare.compare_fee_type(session, "THC").rows] == [D("360.00")]
    assert compare.compare_fee_type(session, "THC", on=days(-200)).rows == []


# --- the pages ------------------------------------------------------------------------------

def test_compare_page_shows_rows_stats_chart_and_links(client, session, admin):
    cheap = make_firm("shipping_line", name_zh="便宜船公司")
    dear = make_firm("shipping_line", name_zh="昂贵船公司")
    cheap_item = thc(cheap, admin, 400)
    thc(dear, admin, 900)
    session.commit()
    response = client.get(f"/compare/THC?unit=per_container&size=40&lang=zh&item={cheap_item.id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert page.index("便宜船公司") < page.index("昂贵船公司")
    assert f'href="/firms/{cheap.credit_code}"' in page and f'href="/items/{cheap_item.id}"' in page
    assert "<svg" in page and 'class="median"' in page and "<desc" in page
    assert 'class="dot marked"' in page
    assert "便宜船公司: 400.00 CNY" in page and "昂贵船公司: 900.00 CNY" in page  # the dots' titles
    assert "650.00" in page  # the median of 400 and 900
    assert "中位数" in page and "与其他企业比较" not in page  # Chinese by default
    assert " style=" not in page and "<script" not in page

    by_firm = client.get("/compare/THC?unit=per_container&size=40&sort=firm&dir=desc&lang=en").get_data(as_text=True)
    names = re.findall(r"Test Logistics \d+", by_firm[by_firm.index("<table"):])
    assert names == sorted(names, reverse=True) and len(names) >= 2
    assert 'aria-sort="descending"' in by_firm
    assert f"{cheap.name_en}: 400.00 CNY" in by_firm  # a dot's title in English names the firm in English


def test_compare_page_bad_input_is_an_error_not_a_crash(client, session):
    response = client.get("/compare/THC?on=31-02-2026&size=99&lang=en")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Not a valid date value" in page or "date" in page.lower()
    assert "Not a valid choice" in page
    assert client.get("/compare/NOSUCH").status_code == 404
    assert client.get("/compare/THC?page=abc&sort=zzz").status_code == 200


def test_compare_index_lists_fee_types_and_the_picker_redirects(client, session, admin):
    thc(make_firm("shipping_line"), admin, 500)
    session.commit()
    page = client.get("/compare?lang=en").get_data(as_text=True)
    assert "/compare/THC?unit=per_container" in page and "Terminal handling charge" in page
    response = client.get("/compare?fee_type=DOC")
    assert response.status_code == 302 and response.location.endswith("/compare/DOC")
    assert client.get("/compare?fee_type=NOPE").status_code == 200


def test_every_fee_item_links_to_its_comparison(client, session, admin):
    firm = make_firm("shipping_line")
    item = thc(firm, admin, 500, size="40HQ")
    session.commit()
    expected = f"/compare/THC?unit=per_container&amp;size=40HQ&amp;item={item.id}"
    assert expected in client.get(f"/firms/{firm.credit_code}").get_data(as_text=True)
    assert expected in client.get(f"/items/{item.id}").get_data(as_text=True)
    assert 'href="/compare"' in client.get("/").get_data(as_text=True)


def test_a_long_comparison_is_paged_and_numbered_across_pages(client, session, admin):
    for n in range(53):
        thc(make_firm("shipping_line", name_zh=f"分页{n:02d}"), admin, 100 + n)
    session.commit()
    first = client.get("/compare/THC?lang=en").get_data(as_text=True)
    numbers = [int(n) for n in re.findall(r'<td class="num">(\d+)</td>\s*<td><a href="/firms/', first)]
    assert numbers == list(range(1, 51))
    assert "Page 1 of 2" in first and 'rel="next"' in first and 'rel="prev"' not in first
    second = client.get("/compare/THC?lang=en&page=2").get_data(as_text=True)
    numbers = [int(n) for n in re.findall(r'<td class="num">(\d+)</td>\s*<td><a href="/firms/', second)]
    assert numbers == [51, 52, 53]
    assert "Page 2 of 2" in second and 'rel="prev"' in second and 'rel="next"' not in second
    table = client.get("/compare/THC?lang=zh&page=2").get_data(as_text=True).split('<table class="data compare">')[1]
    assert [m for m in re.findall(r"分页\d\d", table)] == ["分页50", "分页51", "分页52"]  # the dearest three
