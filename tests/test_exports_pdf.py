"""The PDFs: Chinese really printed (not boxes), amounts, page X of Y, credit code and the
chain head's hash; the schedule cache; the download links on the pages."""
from __future__ import annotations

import re

import pytest

from feereg.exports import pdf
from feereg.services import registry

from .audit_factories import make_flag
from .conftest import login
from .factories import days, make_firm, make_user, publish
from .pdf_support import pdf_text, require_pdf


@pytest.fixture(autouse=True)
def _pdf_available():
    require_pdf()


@pytest.fixture
def yard(session):
    firm = make_firm("offport_yard", ports=("YANTIAN",), name_zh="深圳盐田测试堆场有限公司")
    user = make_user("publisher", firm)
    publish(firm, user, fee_type="LOLO", name_zh="港外堆场吊箱费", name_en="Yard lift on/off",
            unit="per_container", container_size="40", amount="1234.50", ports="YANTIAN")
    publish(firm, user, fee_type="CLEAN", name_zh="洗箱费", name_en="Container cleaning",
            unit="per_container", amount="60", ports="YANTIAN")
    session.commit()
    return firm, user


def _flat(pages: list[str]) -> str:
    # pypdf may break a line inside a long value (the 64-hex hash) or drop spaces: compare
    # without whitespace.
    return re.sub(r"\s+", "", "".join(pages))


def test_schedule_pdf_prints_chinese_amounts_code_hash_and_page_numbers(client, yard):
    firm, _user = yard
    response = client.get(f"/firms/{firm.credit_code}/schedule.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    count, pages = pdf_text(response.data)
    text = _flat(pages)
    for expected in ("港外堆场吊箱费", "洗箱费", "深圳盐田测试堆场有限公司", "1,234.50CNY", "60.00CNY",
                     firm.credit_code, firm.chain_head, f"第1页，共{count}页", "收费公示表"):
        assert expected in text, expected


def test_schedule_pdf_in_english_and_as_of_a_date(client, session, yard):
    firm, user = yard
    publish(firm, user, fee_type="DOC", name_zh="文件费", name_en="Documentation fee", unit="per_bl",
            amount="450", effective_from=days(40))
    session.commit()
    _count, now = pdf_text(client.get(f"/firms/{firm.credit_code}/schedule.pdf?lang=en").data)
    assert "Yard lift on/off" in now[0] and "Page 1 of 1" in now[0] and "Documentation fee" not in now[0]
    later = days(45).isoformat()
    _count, then = pdf_text(client.get(f"/firms/{firm.credit_code}/schedule.pdf?lang=en&on={later}").data)
    assert "Documentation fee" in then[0] and later in then[0]
    assert client.get(f"/firms/{firm.credit_code}/schedule.pdf?on=yesterday").status_code == 400
    assert client.get("/firms/NOSUCHFIRM/schedule.pdf").status_code == 404


def test_a_long_schedule_repeats_its_header_and_numbers_every_page(client, session, yard):
    firm, user = yard
    for n in range(70):
        publish(firm, user, fee_type="STORAGE", fee_code=f"S{n:03d}", name_zh=f"堆存费{n}号", unit="per_container_day",
                amount=str(10 + n), ports="YANTIAN")
    session.commit()
    count, pages = pdf_text(client.get(f"/firms/{firm.credit_code}/schedule.pdf?lang=zh").data)
    assert count >= 2
    for number, page in enumerate(pages, start=1):
        flat = _flat([page])
        assert f"第{number}页，共{count}页" in flat
        assert "收费项目" in flat or "费用" in flat  # the table header on every page
    assert "堆存费69号" in _flat(pages)


def test_unchanged_schedule_is_served_from_the_cache_and_a_publish_renews_it(client, session, yard, monkeypatch):
    firm, user = yard
    url = f"/firms/{firm.credit_code}/schedule.pdf?lang=zh"  # the language sticks to the session: say it
    first = client.get(url).data
    renders = []
    real = pdf.render_pdf
    monkeypatch.setattr(pdf, "render_pdf", lambda *a, **kw: renders.append(a) or real(*a, **kw))
    assert client.get(url).data == first and renders == []  # same bytes, no render
    assert client.get(url.replace("zh", "en")).data != first and len(renders) == 1  # another language
    publish(firm, user, fee_type="DOC", name_zh="文件费", unit="per_bl", amount="300")
    session.commit()
    renewed = client.get(url).data
    assert renewed != first and len(renders) == 2
    assert "文件费" in _flat(pdf_text(renewed)[1])
    assert firm.chain_head in _flat(pdf_text(renewed)[1])


def test_cache_key_moves_with_chain_head_date_and_language(session, yard):
    firm, _user = yard
    key = pdf.schedule_cache_key(firm, days(0), "zh")
    assert key == pdf.schedule_cache_key(firm, days(0), "zh")
    assert key != pdf.schedule_cache_key(firm, days(1), "zh")
    assert key != pdf.schedule_cache_key(firm, days(0), "en")
    firm.chain_head = "0" * 64
    assert key != pdf.schedule_cache_key(firm, days(0), "zh")


def test_page_label_css_from_the_translation():
    assert pdf.page_label_css("第 %(page)s 页，共 %(pages)s 页") == \
        '@page { @bottom-right { content: "第 " counter(page) " 页，共 " counter(pages) " 页"; } }'
    assert 'counter(pages) "\\""' in pdf.page_label_css('Page %(page)s of %(pages)s"')


def test_pdfs_render_without_the_universal_pseudo_element_rules():
    # A fifth of a long schedule's render. If a WeasyPrint upgrade moves its user-agent
    # stylesheet or the hook, PDFs still render, only slower: this test says so.
    from pathlib import Path

    import weasyprint

    source = (Path(weasyprint.__file__).parent / "css" / "html5_ua.css").read_text(encoding="utf-8")
    assert {m.group(1) for m in pdf._UA_UNIVERSAL_PSEUDO.finditer(source)} >= {"marker", "footnote-call", "note-call"}
    assert pdf._html_class() is not weasyprint.HTML and pdf._print_ua_stylesheet() is not None


def test_comparison_pdf(client, session, yard):
    firm, _user = yard
    other = make_firm("offport_yard", ports=("YANTIAN",), name_zh="深圳另一测试堆场")
    publish(other, make_user("publisher", other), fee_type="LOLO", name_zh="吊箱费", unit="per_container",
            container_size="40", amount="900")
    session.commit()
    response = client.get("/compare/LOLO/download.pdf?size=40&unit=per_container")
    assert response.status_code == 200
    count, pages = pdf_text(response.data)
    text = _flat(pages)
    for expected in ("深圳盐田测试堆场有限公司", "深圳另一测试堆场", "1,234.50", "900.00", firm.credit_code,
                     other.credit_code, firm.chain_head[:16], f"第1页，共{count}页"):
        assert expected in text, expected
    assert text.index("深圳另一测试堆场") < text.index("深圳盐田测试堆场有限公司")  # cheapest first


def test_quote_pdf(client, session, yard):
    firm, _user = yard
    response = client.get("/quote/results.pdf?lang=zh&port=YANTIAN&direction=export&count_40=2&bills=1"
                          "&storage_days=0")
    assert response.status_code == 200
    count, pages = pdf_text(response.data)
    text = _flat(pages)
    for expected in ("深圳盐田测试堆场有限公司", "港外堆场吊箱费", "2,469.00", firm.credit_code, f"第1页，共{count}页"):
        assert expected in text, expected
    assert client.get("/quote/results.pdf?port=NOWHERE").status_code == 400


def test_audit_report_pdf_is_for_regulators(app, session, yard):
    firm, _user = yard
    make_flag(firm, "PEER_OUTLIER", "high")
    regulator = make_user("regulator")
    session.commit()
    client = app.test_client()
    assert client.get("/regulator/report.pdf").status_code == 302
    login(client, regulator.email)
    assert client.get("/regulator/report.pdf?firm=91440300MA5XXXXXXX").status_code == 400
    response = client.get(f"/regulator/report.pdf?firm={firm.credit_code}&lang=zh")
    assert response.status_code == 200
    count, pages = pdf_text(response.data)
    text = _flat(pages)
    for expected in ("审计报告", "深圳盐田测试堆场有限公司", firm.credit_code, firm.chain_head, f"第1页，共{count}页"):
        assert expected in text, expected


def test_download_links_on_the_pages(app, client, session, yard):
    firm, _user = yard
    code = firm.credit_code
    body = client.get(f"/firms/{code}").get_data(as_text=True)
    for fmt in ("pdf", "csv", "xlsx"):
        assert f'href="/firms/{code}/schedule.{fmt}"' in body
    dated = client.get(f"/firms/{code}?on={days(0).isoformat()}").get_data(as_text=True)
    assert f'/firms/{code}/schedule.pdf?on={days(0).isoformat()}' in dated
    body = client.get("/compare/LOLO?size=40&lang=en").get_data(as_text=True)
    assert "/compare/LOLO/download.pdf?" in body and "/compare/LOLO/download.xlsx?" in body
    assert "Download PDF" in body
    body = client.get("/quote/results?lang=zh&port=YANTIAN&direction=export&count_40=1&bills=1").get_data(as_text=True)
    assert "/quote/results.pdf?" in body and "下载 PDF" in body
    regulator = make_user("regulator")
    session.commit()
    login(client, regulator.email)
    body = client.get("/regulator/report").get_data(as_text=True)
    assert "/regulator/report.pdf" in body and "/regulator/report.xlsx" in body and "/regulator/report.csv" in body
    body = client.get("/regulator/flags").get_data(as_text=True)
    assert "/regulator/flags.csv" in body and "/regulator/flags.xlsx" in body
