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
