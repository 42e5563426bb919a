"""Switching language in the browser: the header's link turns a page to English and back,
the choice follows the visitor from page to page, and `<html lang>` always says which."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import REGULATOR, login


def heading_is(tab, text: str, lang: str) -> None:
    page = tab.page
    expect(page.get_by_role("heading", level=1)).to_contain_text(text)
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN" if lang == "zh" else "en")
    expect(page).to_have_title(re.compile(r" · 港口收费公示平台$" if lang == "zh" else r" · Port Fee Registry$"))
    # The switch offers the other language, named in that language.
    other = page.locator("a.lang")
    expect(other).to_have_text("English" if lang == "zh" else "中文")
    expect(other).to_have_attribute("lang", "en" if lang == "zh" else "zh")


def switch(tab) -> None:
    tab.page.locator("a.lang").click()


def test_a_visitor_switches_to_english_and_back(site, open_tab):
    tab = open_tab(site)
    page = tab.page
    main_nav = page.get_by_role("navigation", name=re.compile("^(主导航|Main)$"))

    tab.goto("/")
    heading_is(tab, "港口收费，由收费企业自行公示", "zh")
    switch(tab)
    heading_is(tab, "Port fees, published by the firms that charge them", "en")
    tab.check("home-en", lang="en")

    # English stays chosen from page to page: the directory, a search, compare, quote.
    main_nav.get_by_role("link", name="Firms", exact=True).click()
    heading_is(tab, "Firm directory", "en")
    tab.check("directory-en", lang="en")
    page.get_by_role("searchbox", name="Search fees").fill("THC")
    page.get_by_role("searchbox", name="Search fees").press("Enter")
    heading_is(tab, "Search fees", "en")
    expect(page.locator("p.count")).to_have_text(re.compile(r"^[\d,]+ fees found$"))
    tab.check("search-en", lang="en")
    main_nav.get_by_role("link", name="Compare fees").click()
    heading_is(tab, "Compare a fee across firms", "en")
    tab.check("compare-en", lang="en")
    main_nav.get_by_role("link", name="Quote a shipment").click()
    heading_is(tab, "Quote a shipment", "en")
    expect(page.get_by_role("button", name="Get quotes")).to_be_visible()
    tab.check("quote-en", lang="en")

    # Back to Chinese on the quote page, and Chinese it stays.
    switch(tab)
    heading_is(tab, "货物费用估算", "zh")
    expect(page.get_by_role("button", name="估算费用")).to_be_visible()
    main_nav.get_by_role("link", name="收费比价").click()
    heading_is(tab, "跨企业比较同一收费", "zh")
    tab.check("compare-zh")

    # A regulator's page, both ways.
    login(tab, REGULATOR)
    tab.goto("/regulator/flags")
    heading_is(tab, "疑点", "zh")
    switch(tab)
    heading_is(tab, "Flags", "en")
    expect(page.get_by_label("Rule")).to_be_visible()
    expect(page.get_by_role("button", name="Filter")).to_be_visible()
    tab.check("flags-en", lang="en")
    switch(tab)
    heading_is(tab, "疑点", "zh")
    expect(page.get_by_label("规则")).to_be_visible()
    tab.check("flags-zh")
    tab.assert_clean()
