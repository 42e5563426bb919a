"""The checks every journey relies on catch what they look for: a page broken on purpose
(in the browser only, the site unchanged) must fail each of them. And keyboard focus is
drawn wherever it lands in the header."""
from __future__ import annotations

import pytest


@pytest.fixture
def tab(site, open_tab):
    tab = open_tab(site)
    tab.goto("/firms")
    return tab


def test_a_content_security_policy_violation_fails_the_page(tab):
    tab.page.evaluate("""() => {
        const script = document.createElement('script');
        script.textContent = 'window.injected = true';
        document.head.appendChild(script);
    }""")
    assert tab.page.evaluate("window.injected === undefined")  # the policy refused the inline script
    tab.page.wait_for_timeout(100)
    with pytest.raises(AssertionError, match="Content Security Policy"):
        tab.assert_clean()


def test_a_javascript_error_fails_the_page(tab):
    tab.page.evaluate("setTimeout(() => { throw new Error('broken on purpose') })")
    tab.page.wait_for_timeout(100)
    with pytest.raises(AssertionError, match="JavaScript error: .*broken on purpose"):
        tab.check("broken")


def test_a_field_without_a_label_fails_the_page(tab):
    tab.page.evaluate("""() => document.querySelector('main').insertAdjacentHTML('afterbegin',
        '<input id="nameless" placeholder="a placeholder is not a label">')""")
    with pytest.raises(AssertionError, match="without a label.*nameless"):
        tab.check("nameless")


def test_a_page_wider_than_a_phone_fails(tab):
    # Styled through the CSSOM, which the policy allows (a style attribute it would refuse).
    tab.page.evaluate("""() => {
        const wide = document.createElement('p');
        wide.className = 'wide';
        wide.style.width = '600px';
        wide.textContent = 'an empty box would not count: it has no area to scroll to';
        document.querySelector('main').append(wide);
    }""")
    with pytest.raises(AssertionError, match=r"scrolls sideways at 390 px.*p\.wide"):
        tab.check("too-wide")


def test_keyboard_focus_is_drawn_on_every_stop_of_the_header(tab):
    seen = []
    tab.tab_to(lambda f: seen.append(f) or f["id"] == "site-q")
    assert [f["text"] for f in seen[:2]] == ["跳至正文", "港口收费公示平台feereg"]
    assert all(f["outline"] >= 2 and f["contrast"] >= 3 for f in seen)  # tab_to checks each; say it here too
    assert len(seen) >= 10  # skip link, brand, the main navigation's links, the language switch
