"""Chinese by default, English one click away, from real message catalogs."""
from feereg.i18n import TRANSLATIONS_DIR

from .factories import make_firm


def test_chinese_is_the_default_language(client, session):
    page = client.get("/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    assert "企业名录" in page or "企业" in page
    assert "Latest published changes" not in page


def test_english_is_one_click_away_and_sticks(client, session):
    page = client.get("/").get_data(as_text=True)
    assert 'href="/?lang=en"' in page
    page = client.get("/?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in page and "Latest published changes" in page
    page = client.get("/firms").get_data(as_text=True)
    assert '<html lang="en">' in page and "Firm directory" in page
    page = client.get("/firms?lang=zh").get_data(as_text=True)
    assert "Firm directory" not in page


def test_every_message_has_a_chinese_translation():
    from babel.messages.pofile import read_po

    with open(TRANSLATIONS_DIR / "zh" / "LC_MESSAGES" / "messages.po", "rb") as fh:
        catalog = read_po(fh)
    missing = [m.id for m in catalog if m.id and not m.string]
    assert missing == []


def test_code_labels_follow_the_language(client, session):
    firm = make_firm(category="offport_yard", ports=("SHEKOU",))
    session.commit()
    zh = client.get(f"/firms/{firm.credit_code}").get_data(as_text=True)
    en = client.get(f"/firms/{firm.credit_code}?lang=en").get_data(as_text=True)
    assert "港外堆场" in zh and "蛇口" in zh
    assert "Off-port container yard" in en and "Shekou" in en


def test_templates_follow_a_forced_language_and_return_to_the_page_s_own(app):
    """Templates' `_()` remembers the translations per locale (i18n.translations): a feed
    or API message rendered with force_locale inside a Chinese page must still switch."""
    from flask import g, render_template_string, session
    from flask_babel import force_locale, refresh

    source = "{{ _('Firm directory') }}"
    with app.app_context(), app.test_request_context("/?lang=zh"):  # a g of its own
        g.page = "zh"  # flask_babel's force_locale does nothing while g is empty
        chinese = render_template_string(source)
        assert chinese != "Firm directory"
        with force_locale("en"):
            assert render_template_string(source) == "Firm directory"
        assert render_template_string(source) == chinese
    with app.app_context(), app.test_request_context("/"):
        g.page = "en"
        session["lang"] = "en"
        assert render_template_string(source) == "Firm directory"
        with force_locale("zh"):
            assert render_template_string(source) == chinese
        assert render_template_string(source) == "Firm directory"
        session["lang"] = "zh"
        refresh()  # the language chosen again: now Chinese
        assert render_template_string(source) == chinese
