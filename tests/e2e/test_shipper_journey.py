"""Journey 2, in the browser: a shipper searches in Chinese (with the keyboard only), opens a
result, compares that fee across firms, prices a shipment and downloads the quote as a PDF."""
from __future__ import annotations

import io
import re
from decimal import Decimal

from playwright.sync_api import expect

from feereg.models import FeeItem, FeeType

QUERY = "堆场"


def amounts(texts: list[str]) -> list[Decimal]:
    return [Decimal(t.replace(",", "").strip()) for t in texts]


def matches_query(item: FeeItem, fee_type: FeeType | None) -> bool:
    """Whether the search had a reason to return this item: the words in one of its texts."""
    texts = [item.name_zh, item.name_en, item.service_content, item.firm.name_zh, item.firm.name_en]
    if fee_type is not None:
        texts += [fee_type.name_zh, fee_type.name_en, fee_type.aliases]
    return any(QUERY in (t or "") for t in texts)


def test_a_shipper_searches_compares_quotes_and_downloads_the_pdf(site, open_tab):
    tab = open_tab(site)
    page = tab.page
    tab.goto("/")
    tab.check("home")

    # Search with the keyboard only: Tab to the search box, type, Enter.
    tab.tab_to(lambda f: f["id"] == "site-q")
    page.keyboard.type(QUERY)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q="))
    count = page.locator("p.count")
    expect(count).to_have_text(re.compile(r"^找到 [\d,]+ 项收费$"))
    total = int(re.sub(r"\D", "", count.inner_text()))
    results = page.locator("table.results tbody tr")
    assert 0 < total and results.count() == min(total, 20)
    item_ids = [int(href.rsplit("/", 1)[1]) for href in
                results.locator("td:first-child a").evaluate_all("links => links.map(a => a.getAttribute('href'))")]
    with site.session() as session:
        opened = session.get(FeeItem, item_ids[0]).name_zh
        for item_id in item_ids:
            item = session.get(FeeItem, item_id)
            assert matches_query(item, session.get(FeeType, item.fee_type_code)), \
                f"{item.name_zh} ({item.firm.name_zh}) does not contain {QUERY}"
    tab.check("search-results")

    # Open the first result, still from the keyboard.
    first = tab.tab_to(lambda f: f["tag"] == "a" and (f["href"] or "").startswith("/items/"), limit=120)
    assert int(first["href"].rsplit("/", 1)[1]) == item_ids[0]
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/items/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(opened)
    tab.check("result")

    # Compare that fee type across firms: every firm's amount, cheapest first, the one we came from marked.
    page.get_by_role("link", name="与其他企业比较").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("比价：")
    rows = page.locator("table.compare tbody tr")
    expect(rows.first).to_be_visible()
    assert rows.count() >= 2, "a comparison of one firm compares nothing"
    expect(page.locator("table.compare tbody tr.marked")).to_have_count(1)
    expect(page.locator("table.compare tbody tr.marked")).to_contain_text(opened)
    in_cny = amounts(rows.locator("td:nth-child(6)").all_inner_texts())
    assert in_cny == sorted(in_cny)
    median = Decimal(page.locator("dl.stats div").filter(has_text="中位数").locator("dd").inner_text().replace(",", ""))
    assert in_cny[0] <= median <= in_cny[-1]
    tab.check("compare")

    # Quote a shipment at Yantian: two 40' high cubes for export, one B/L, three days at the yard.
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="货物费用估算").click()
    tab.check("quote-form")
    page.get_by_label("港口").select_option("YANTIAN")
    page.get_by_label("出口", exact=True).check()
    page.get_by_label("40英尺高柜（个）").fill("2")
    page.get_by_label("提单（票）").fill("1")
    page.get_by_label("堆存天数").fill("3")
    page.get_by_role("button", name="估算费用").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("货物费用估算结果")
    best = page.locator("details.quote[open]").first
    expect(best).to_be_visible()
    firm_name = re.sub(r"^\d+\.\s*|\s+—.*$", "", best.locator("summary").inner_text())
    fees = sorted(set(best.locator("tbody td:first-child a").all_inner_texts()))
    assert fees, "the cheapest firm's quote lists no fee"
    lines = amounts([t.removesuffix("CNY") for t in best.locator("tbody td:last-child").all_inner_texts()])
    total_cny = amounts([best.locator("tfoot td").inner_text()])[0]
    assert sum(lines) == total_cny
    tab.check("quote-results")

    # The PDF of the quote: a real PDF, its text in Chinese, the same firm and fees.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="下载 PDF").click()
    download = download_info.value
    assert re.fullmatch(r"feereg-quote-YANTIAN-\d{4}-\d{2}-\d{2}\.pdf", download.suggested_filename)
    saved = tab.shots / download.suggested_filename
    download.save_as(saved)
    body = saved.read_bytes()
    assert body.startswith(b"%PDF-")
    from pypdf import PdfReader

    text = re.sub(r"\s+", "", "".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages))
    assert "货物费用估算" in text
    assert re.sub(r"\s+", "", firm_name) in text
    missing = [fee for fee in fees if re.sub(r"\s+", "", fee) not in text]
    assert not missing, f"fee names missing from the PDF: {missing}"
    assert f"{total_cny:,.2f}" in text
    tab.assert_clean()
