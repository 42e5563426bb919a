"""The invoice check: each mark, parsing pasted and uploaded lines, the page and its one-step complaint."""
import io
from datetime import date, timedelta

import pytest

from feereg.services import checks, invoice_check, registry
from feereg.services.invoice_check import check_invoice, parse

from .conftest import post_form
from .factories import make_firm, make_user, publish

ON = registry.today() - timedelta(days=3)


@pytest.fixture
def world(session):
    agent = make_firm(category="shipping_agent", name_zh="深圳发票测试船代有限公司")
    pub = make_user("publisher", agent)
    publish(agent, pub, effective_from=ON - timedelta(days=30))  # DOC 文件费 450 per B/L
    publish(agent, pub, effective_from=ON - timedelta(days=30), fee_type="THC", name_zh="码头操作费",
            unit="per_container", container_size="20", amount="800")
    publish(agent, pub, effective_from=ON - timedelta(days=30), fee_type="THC", name_zh="码头操作费",
            unit="per_container", container_size="40", amount="1200")
    terminal = make_firm(category="terminal")
    publish(terminal, make_user("publisher", terminal), effective_from=ON - timedelta(days=30), fee_type="TUG",
            name_zh="拖轮费", unit="per_call", amount="9000", pricing_basis="government_guided",
            legal_basis="交水规〔2019〕2号")
    regulator = make_user("regulator")
    checks.record_policy_notice(session, {"kind": "cap", "fee_type_code": "TUG", "amount": "9500",
                                          "effective_from": date(2019, 4, 1)}, regulator)
    session.commit()
    return {"agent": agent, "terminal": terminal}


def line(firm, fee, amount, unit="", qty="1", on=ON):
    return f"{firm.credit_code},{fee},{unit},{qty},{amount},{on.isoformat()}"


def marks(session, text):
    return [r.mark for r in check_invoice(session, parse(text))]


def test_as_published_through_a_catalog_alias_and_per_unit(session, world):
    a = world["agent"]
    # 单证费 is an alias of DOC; 3 x 20' THC at 800 is 2400 on the invoice.
    text = "\n".join([line(a, "单证费", "450", "per_bl"), line(a, "THC", "2400", "per_container", qty="3")])
    results = check_invoice(session, parse(text))
    assert [r.mark for r in results] == ["as_published", "as_published"]
    assert results[0].fee_type_code == "DOC" and results[0].published.amount == 450
    # Several sizes published: the highest (1200 for a 40') is the reference.
    assert results[1].published.amount == 1200


def test_above_the_published_amount(session, world):
    results = check_invoice(session, parse(line(world["agent"], "文件费", "450.01")))
    assert results[0].mark == "above" and results[0].published.amount == 450
    args = results[0].complaint_args
    assert args["amount"] == "450.01" and args["item"] and "450.00 CNY" in args["description"]


def test_not_in_the_schedule_by_type_by_unit_and_by_date(session, world):
    a = world["agent"]
    text = "\n".join([line(a, "换单费", "100"),                      # not published at all
                      line(a, "文件费", "450", unit="per_container"),  # DOC is published per B/L only
                      line(a, "文件费", "450", on=ON - timedelta(days=31))])  # before it took effect
    assert marks(session, text) == ["not_in_schedule"] * 3


def test_abolished_by_the_catalog_or_a_notice(session, world):
    a = world["agent"]
    assert marks(session, line(a, "堆存保管费", "25")) == ["abolished"]  # merged on 2019-04-01
    checks.record_policy_notice(session, {"kind": "abolish", "fee_type_code": "DOC", "effective_from": ON},
                                make_user("regulator"))
    assert marks(session, line(a, "文件费", "450") + "\n" + line(a, "文件费", "450", on=ON - timedelta(days=1))) == [
        "abolished", "as_published"]


def test_over_a_cap_and_at_the_cap(session, world):
    t = world["terminal"]
    results = check_invoice(session, parse(line(t, "拖轮费", "9500.01") + "\n" + line(t, "拖轮使用费", "9000")))
    assert [r.mark for r in results] == ["over_cap", "as_published"]
    assert results[0].cap == 9500


def test_charged_twice_same_fee_or_one_document_fee_under_two_names(session, world):
    a = world["agent"]
    same = "\n".join([line(a, "文件费", "450", "per_bl"), line(a, "文件费", "450", "per_bl")])
    results = check_invoice(session, parse(same))
    assert [r.mark for r in results] == ["as_published", "charged_twice"] and results[1].repeats == 1
    split = "\n".join([line(a, "文件费", "450", "per_bl"), line(a, "单证费", "300", "per_bl")])
    assert marks(session, split) == ["as_published", "charged_twice"]
    # Two containers' THC on two lines at different sizes' prices is not a double charge.
    sizes = "\n".join([line(a, "THC", "800", "per_container"), line(a, "THC", "1200", "per_container")])
    assert marks(session, sizes) == ["as_published", "as_published"]


def test_invalid_lines_say_why(session, world):
    results = check_invoice(session, parse("nobody,文件费,,1,450,2026-01-01\n"
                                           f"{world['agent'].credit_code},文件费,per_parcel,1,abc,01/02/2026"))
    assert [r.mark for r in results] == ["invalid", "invalid"]
    assert len(results[1].line.errors) == 3  # unit, amount, date


def test_header_rows_tabs_and_firm_names_are_understood(session, world):
    text = ("日期\t收费项目\t企业\t金额\n"
            f"{ON.isoformat()}\t文件费\t深圳发票测试船代有限公司\t450")
    results = check_invoice(session, parse(text))
    assert [r.mark for r in results] == ["as_published"] and results[0].firm.id == world["agent"].id


def test_page_marks_lines_and_links_a_complaint(client, world):
    text = line(world["agent"], "换单费", "100")
    page = post_form(client, "/invoice-check?lang=en", {"lines": text}).get_data(as_text=True)
    assert "not in the schedule" in page and "/complaints/new?" in page and "fee_name=%E6%8D%A2" in page
    assert client.post("/invoice-check", data={"lines": text}).status_code == 400  # CSRF


def test_page_reads_an_uploaded_gbk_csv(client, world):
    content = ("firm,fee_name,unit,quantity,amount,date\n" + line(world["agent"], "文件费", "500")).encode("gb18030")
    page = post_form(client, "/invoice-check?lang=en", {"file": (io.BytesIO(content), "invoice.csv")},
                     content_type="multipart/form-data").get_data(as_text=True)
    assert "above the published amount" in page and "450.00 CNY" in page
