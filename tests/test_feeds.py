"""Atom feeds of published changes: valid Atom 1.0 read with ElementTree, newest first,
stable ids, one firm / fee type / port each, withdrawn items as withdrawn, conditional GET."""
import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime

from feereg.extensions import db
from feereg.models import FeeItemVersion
from feereg.services import registry
from feereg.services.registry import Change

from .factories import days, item_values, make_firm, make_user, publish

A = "{http://www.w3.org/2005/Atom}"


def parse(response):
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/atom+xml"
    return ET.fromstring(response.data)


def entries(feed):
    return feed.findall(f"{A}entry")


def text(element, path):
    found = element.find(path.replace("a:", A))
    return found.text if found is not None else None


def ids(feed):
    return [text(e, "a:id") for e in entries(feed)]


def link(element, rel):
    return next(l.get("href") for l in element.findall(f"{A}link") if l.get("rel", "alternate") == rel)


def _registry(session):
    """Firm A: DOC 450 → 500, EIR withdrawn. Firm B (serves Shekou): THC with no port."""
    firm_a = make_firm(name_zh="深圳甲物流有限公司", ports=("YANTIAN",))
    firm_b = make_firm(name_zh="深圳乙码头有限公司", category="terminal", ports=("SHEKOU",))
    user_a, user_b = make_user("publisher", firm_a), make_user("publisher", firm_b)
    doc = publish(firm_a, user_a, days(0), amount="450")
    eir = publish(firm_a, user_a, days(0), fee_type="EIR", name_zh="设备交接单费", name_en="EIR fee",
                  unit="per_container", amount="80")
    publish(firm_b, user_b, days(0), fee_type="THC", name_zh="码头操作费", name_en="Terminal handling",
            unit="per_container", amount="1200", container_size="20", ports="")
    registry.update_draft(session, doc, item_values(amount="500"), user_a, None)
    registry.publish_item(session, doc, user_a, days(40), reason="调价")
    registry.withdraw_item(session, eir, user_a, days(5), reason="不再收取")
    session.commit()
    return firm_a, firm_b, doc, eir


def _versions_newest_first(session, **where):
    stmt = db.select(FeeItemVersion).filter_by(**where).order_by(FeeItemVersion.published_at.desc(),
                                                                 FeeItemVersion.id.desc())
    return list(session.scalars(stmt))


def test_registry_feed_is_atom_newest_first_with_one_entry_per_version(client, session):
    firm_a, firm_b, doc, eir = _registry(session)
    feed = parse(client.get("/feeds/changes.atom"))
    assert feed.tag == f"{A}feed"
    assert feed.get("{http://www.w3.org/XML/1998/namespace}lang") == "zh-CN"
    assert text(feed, "a:id") == "tag:feereg,2026:feed/registry"
    assert text(feed, "a:title") and text(feed, "a:author/a:name")
    assert link(feed, "self") == "http://localhost/feeds/changes.atom"
    assert link(feed, "alternate") == "http://localhost/"
    versions = _versions_newest_first(session)
    assert ids(feed) == [f"tag:feereg,2026:version/{v.firm.credit_code}/{v.seq}" for v in versions]
    assert len(ids(feed)) == 5
    # Each entry: updated = published_at, a link to the item's history, its firm as author.
    for entry, version in zip(entries(feed), versions):
        assert text(entry, "a:updated") == version.published_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert link(entry, "alternate") == f"http://localhost/items/{version.item_id}"
        assert text(entry, "a:author/a:name") == version.firm.name_zh
        assert entry.find(f"{A}category").get("term") == version.fee_type_code
    assert text(feed, "a:updated") == text(entries(feed)[0], "a:updated")


def test_entries_say_new_changed_or_withdrawn_with_old_and_new_amounts(client, session, english):
    firm_a, firm_b, doc, eir = _registry(session)
    feed = parse(client.get("/feeds/changes.atom?lang=en"))
    assert feed.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert text(feed, "a:id") == "tag:feereg,2026:feed/registry/en"
    by_id = {text(e, "a:id"): e for e in entries(feed)}
    code = firm_a.credit_code

    changed = by_id[f"tag:feereg,2026:version/{code}/3"]
    assert text(changed, "a:title") == f"{firm_a.name_en} · Documentation fee · 500.00 CNY (changed)"
    summary = text(changed, "a:summary")
    assert "450.00 CNY → 500.00 CNY" in summary
    assert f"effective from {days(40).isoformat()}" in summary and "per B/L" in summary
    assert "Reason: 调价" in summary

    withdrawn = by_id[f"tag:feereg,2026:version/{code}/4"]
    assert text(withdrawn, "a:title") == f"{firm_a.name_en} · EIR fee · 80.00 CNY (withdrawn)"
    assert text(withdrawn, "a:summary").startswith(f"Withdrawn, effective from {days(5).isoformat()} "
                                                   "(it was 80.00 CNY")

    new = by_id[f"tag:feereg,2026:version/{code}/1"]
    assert text(new, "a:title").endswith("450.00 CNY (new)")
    assert text(new, "a:summary").startswith("New fee: 450.00 CNY, per B/L")


def test_chinese_by_default_whatever_the_session_language(client, session):
    _registry(session)
    client.get("/?lang=en")  # the reader's browsing language sticks in the session...
    feed = parse(client.get("/feeds/changes.atom"))  # ...but a feed's address alone decides
    titles = [text(e, "a:title") for e in entries(feed)]
    assert any(t.endswith("500.00 CNY（变更）") for t in titles)
    assert any(t.endswith("80.00 CNY（已撤回）") for t in titles)
    assert any(t.endswith("450.00 CNY（新增）") for t in titles)
    assert "文件费" in " ".join(titles)


def test_ids_are_stable_as_the_feed_moves_on(client, session):
    firm_a, firm_b, doc, eir = _registry(session)
    before = ids(parse(client.get("/feeds/changes.atom")))
    user = make_user("publisher", firm_b)
    publish(firm_b, user, days(0), fee_type="DOC", amount="300")
    session.commit()
    after = ids(parse(client.get("/feeds/changes.atom")))
    assert after[0] == f"tag:feereg,2026:version/{firm_b.credit_code}/2"
    assert after[1:] == before
    # The other language's feed names the same entries the same way.
    assert ids(parse(client.get("/feeds/changes.atom?lang=en"))) == after


def test_firm_feed_holds_only_that_firm(client, session):
    firm_a, firm_b, doc, eir = _registry(session)
    feed = parse(client.get(f"/feeds/firms/{firm_a.credit_code}.atom"))
    assert text(feed, "a:id") == f"tag:feereg,2026:feed/firm/{firm_a.credit_code}"
    assert link(feed, "alternate") == f"http://localhost/firms/{firm_a.credit_code}"
    assert ids(feed) == [f"tag:feereg,2026:version/{firm_a.credit_code}/{seq}" for seq in (4, 3, 2, 1)]
    assert {text(e, "a:author/a:name") for e in entries(feed)} == {firm_a.name_zh}
    assert firm_a.name_zh in text(feed, "a:title")
    assert client.get("/feeds/firms/914403000000000000.atom").status_code == 404


def test_fee_type_feed_holds_only_that_type(client, session):
    firm_a, firm_b, doc, eir = _registry(session)
    other = make_firm()
    publish(other, make_user("publisher", other), days(0), amount="380")
    session.commit()
    feed = parse(client.get("/feeds/fee-types/doc.atom"))
    assert text(feed, "a:id") == "tag:feereg,2026:feed/fee_type/DOC"
    assert link(feed, "alternate") == "http://localhost/compare/DOC"
    assert {e.find(f"{A}category").get("term") for e in entries(feed)} == {"DOC"}
    assert ids(feed) == [f"tag:feereg,2026:version/{other.credit_code}/1",
                         f"tag:feereg,2026:version/{firm_a.credit_code}/3",
                         f"tag:feereg,2026:version/{firm_a.credit_code}/1"]
    assert client.get("/feeds/fee-types/NOSUCH.atom").status_code == 404


def test_port_feed_follows_a_ports_fees(client, session):
    firm_a, firm_b, doc, eir = _registry(session)
    # Firm B's THC names no port: it applies where B works, Shekou; A's items name Yantian.
    shekou = parse(client.get("/feeds/ports/SHEKOU.atom"))
    assert ids(shekou) == [f"tag:feereg,2026:version/{firm_b.credit_code}/1"]
    yantian = parse(client.get("/feeds/ports/YANTIAN.atom"))
    assert {i.rsplit("/", 2)[1] for i in ids(yantian)} == {firm_a.credit_code}
    assert link(shekou, "alternate") == "http://localhost/firms?port=SHEKOU"
    assert "蛇口" in text(shekou, "a:title")
    assert client.get("/feeds/ports/ATLANTIS.atom").status_code == 404


def test_feed_is_capped_newest_first(client, session):
    firm = make_firm()
    user = make_user("publisher", firm)
    changes = [Change(None, item_values(fee_code=f"F{n:03d}", amount=str(100 + n)), days(0)) for n in range(55)]
    registry.publish_changes(session, firm, changes, user)
    session.commit()
    feed = parse(client.get(f"/feeds/firms/{firm.credit_code}.atom"))
    assert ids(feed) == [f"tag:feereg,2026:version/{firm.credit_code}/{seq}" for seq in range(55, 5, -1)]


def test_conditional_requests_answer_304_until_something_is_published(client, session):
    firm_a, firm_b, doc, eir = _registry(session)
    first = client.get("/feeds/changes.atom")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    newest = _versions_newest_first(session)[0].published_at
    assert parsedate_to_datetime(modified).replace(tzinfo=None) == newest.replace(microsecond=0)

    again = client.get("/feeds/changes.atom", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    since = client.get("/feeds/changes.atom", headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    # Another language is another document: its own validator.
    assert client.get("/feeds/changes.atom?lang=en", headers={"If-None-Match": etag}).status_code == 200

    publish(firm_b, make_user("publisher", firm_b), days(0), fee_type="DOC", amount="300")
    session.commit()
    fresh = client.get("/feeds/changes.atom", headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag
    assert len(entries(ET.fromstring(fresh.data))) == 6
    later = format_datetime(newest.replace(tzinfo=None) - timedelta(seconds=1), usegmt=False)
    assert client.get("/feeds/changes.atom", headers={"If-Modified-Since": later}).status_code == 200


def test_user_text_cannot_break_the_document(client, session):
    firm = make_firm(name_zh="深圳<b>&amp;\"测试\"</b>物流有限公司")
    user = make_user("publisher", firm)
    item = publish(firm, user, days(0), name_zh="文件费 <![CDATA[x]]> & </entry>", amount="450")
    registry.update_draft(session, item, item_values(name_zh="文件费 <![CDATA[x]]> & </entry>", amount="451"),
                          user, None)
    # The reason is free text a service takes as given; a vertical tab cannot be in XML 1.0.
    registry.publish_item(session, item, user, days(1), reason="调价\x0b]]><x>")
    session.commit()
    feed = parse(client.get(f"/feeds/firms/{firm.credit_code}.atom"))
    newest = entries(feed)[0]
    assert text(newest, "a:author/a:name") == "深圳<b>&amp;\"测试\"</b>物流有限公司"
    assert "文件费 <![CDATA[x]]> & </entry>" in text(newest, "a:title")
    assert text(newest, "a:summary").endswith("调价\ufffd]]><x>")
    assert len(entries(feed)) == 2


def test_pages_offer_their_feeds_in_their_language(client, session):
    firm_a, firm_b, doc, eir = _registry(session)
    pattern = re.compile(r'<link rel="alternate" type="application/atom\+xml" title="[^"]+" href="([^"]+)">')
    pages = {"/": "/feeds/changes.atom", f"/firms/{firm_a.credit_code}": f"/feeds/firms/{firm_a.credit_code}.atom",
             "/compare/DOC": "/feeds/fee-types/DOC.atom", "/data": "/feeds/changes.atom"}
    for page, feed_url in pages.items():
        html = client.get(page + "?lang=zh").get_data(as_text=True)
        assert pattern.findall(html) == [feed_url], page
        assert f'href="{feed_url}"' in html.split("</head>", 1)[1], page  # a visible link too
        if page != "/data":
            assert "订阅变更（Atom 订阅源）" in html
        english = client.get(page + "?lang=en").get_data(as_text=True)
        assert pattern.findall(english) == [feed_url + "?lang=en"], page
    # Every advertised feed answers with entries.
    assert len(entries(parse(client.get(f"/feeds/firms/{firm_a.credit_code}.atom?lang=en")))) == 4
