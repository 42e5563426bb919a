"""The open data API's public endpoints: filters narrow, pages link, as_of goes back in
time, answers revalidate with 304, and every error is a JSON problem that says what was wrong."""
from __future__ import annotations

import pytest

from feereg import create_app
from feereg.extensions import db
from feereg.services import firms, registry

from .api_world import build_world, days
from .conftest import _test_config
from .factories import item_values, make_user


@pytest.fixture
def world(session):
    return build_world(session)


def get(client, url, **kw):
    response = client.get(url, **kw)
    assert response.is_json, (url, response.status_code, response.get_data(as_text=True)[:300])
    return response, response.get_json()


def codes_of(body) -> list[str]:
    return sorted(row["credit_code"] for row in body["items"])


# --- firms -------------------------------------------------------------------------------

def test_firms_are_filtered_by_category_port_status_and_name(client, session, world):
    agent, yard = world["agent"], world["yard"]
    assert codes_of(get(client, "/api/v1/firms")[1]) == sorted([agent.credit_code, yard.credit_code])
    assert codes_of(get(client, "/api/v1/firms?category=offport_yard")[1]) == [yard.credit_code]
    assert codes_of(get(client, "/api/v1/firms?port=SHEKOU")[1]) == [agent.credit_code]
    assert codes_of(get(client, "/api/v1/firms?q=堆场")[1]) == [yard.credit_code]
    assert get(client, "/api/v1/firms?status=suspended")[1]["items"] == []
    firms.set_status(session, yard, "suspended", "未按规定公示", world["admin"])
    session.commit()
    suspended = get(client, "/api/v1/firms?status=suspended")[1]["items"]
    assert [(f["credit_code"], f["status"], f["status_reason"]) for f in suspended] == [
        (yard.credit_code, "suspended", "未按规定公示")]


def test_firm_listing_pages_link_to_each_other(client, world):
    response, first = get(client, "/api/v1/firms?per_page=1&port=SHEKOU&category=shipping_agent")
    assert first["total"] == 1 and first["pages"] == 1 and first["links"]["next"] is None
    response, first = get(client, "/api/v1/firms?per_page=1")
    assert (first["total"], first["pages"], first["page"], first["per_page"]) == (2, 2, 1, 1)
    assert first["links"]["prev"] is None
    assert first["links"]["next"] == "/api/v1/firms?per_page=1&page=2"
    assert '</api/v1/firms?per_page=1&page=2>; rel="next"' in response.headers["Link"]
    _, second = get(client, first["links"]["next"])
    assert second["links"]["prev"] == "/api/v1/firms?per_page=1" and second["links"]["next"] is None
    assert {first["items"][0]["credit_code"], second["items"][0]["credit_code"]} == {
        world["agent"].credit_code, world["yard"].credit_code}
    _, beyond = get(client, "/api/v1/firms?per_page=1&page=5")
    assert beyond["items"] == [] and beyond["links"]["prev"] == "/api/v1/firms?per_page=1&page=2"


def test_one_firm_with_its_chain_and_links(client, world):
    agent = world["agent"]
    _, body = get(client, f"/api/v1/firms/{agent.credit_code.lower()}")
    assert body["credit_code"] == agent.credit_code and body["name_zh"] == "深圳测试船代有限公司"
    assert body["ports"] == ["SHEKOU"] and body["item_count"] == 2
    assert body["chain_length"] == 4 and body["chain_head"] == agent.chain_head
    assert body["links"]["fee_items"] == f"/api/v1/fee-items?firm={agent.credit_code}"
    response, missing = get(client, "/api/v1/firms/914403000000000000")
    assert response.status_code == 404 and "914403000000000000" in missing["detail"]


# --- fee items, versions, as_of ------------------------------------------------------------

def test_fee_items_in_force_are_narrowed_by_each_filter(client, world):
    agent, yard = world["agent"], world["yard"]
    _, everything = get(client, "/api/v1/fee-items")
    assert sorted(i["item_id"] for i in everything["items"]) == sorted(
        [world["thc"].id, world["doc"].id, world["lolo"].id])
    cases = {
        f"firm={agent.credit_code}": {world["thc"].id, world["doc"].id},
        "fee_type=thc": {world["thc"].id},
        "port=YANTIAN": {world["lolo"].id},
        "category=offport_yard": {world["lolo"].id},
        "currency=USD": {world["lolo"].id},
        "unit=per_bl": {world["doc"].id},
        "container_size=40": {world["thc"].id},
        "container_size=any": {world["doc"].id, world["lolo"].id},
        f"firm={yard.credit_code}&currency=CNY": set(),
    }
    for query, expected in cases.items():
        _, body = get(client, f"/api/v1/fee-items?{query}")
        assert {i["item_id"] for i in body["items"]} == expected, query
        assert body["total"] == len(expected), query
    lolo = get(client, "/api/v1/fee-items?currency=USD")[1]["items"][0]
    assert lolo["amount"] == "180.00" and lolo["currency"] == "USD" and lolo["firm"]["credit_code"] == yard.credit_code
    assert lolo["name_zh"] == "港外堆场吊箱费" and lolo["hash"] == world["lolo"].versions[-1].hash


def test_as_of_returns_the_version_in_force_then(client, world):
    thc = world["thc"]
    amounts = {}
    for label, on in (("year ago", days(-200)), ("today", None), ("next month", days(45)), ("too early", days(-500))):
        query = f"fee_type=THC&as_of={on.isoformat()}" if on else "fee_type=THC"
        _, body = get(client, f"/api/v1/fee-items?{query}")
        amounts[label] = [i["amount"] for i in body["items"]]
    assert amounts == {"year ago": ["400.00"], "today": ["520.00"], "next month": ["600.00"], "too early": []}

    _, item = get(client, f"/api/v1/fee-items/{thc.id}?as_of={days(-200).isoformat()}")
    assert item["in_force"]["amount"] == "400.00" and item["as_of"] == days(-200).isoformat()
    assert [v["amount"] for v in item["versions"]] == ["600.00", "520.00", "400.00"]  # newest first, all of them
    assert get(client, f"/api/v1/fee-items/{thc.id}")[1]["in_force"]["amount"] == "520.00"

    _, versions = get(client, f"/api/v1/fee-items/{thc.id}/versions?as_of={days(-200).isoformat()}")
    assert [v["amount"] for v in versions["items"]] == ["400.00"] and versions["total"] == 1
    _, history = get(client, f"/api/v1/fee-items/{thc.id}/versions")
    assert [v["seq"] for v in history["items"]] == [3, 2, 1]
    assert history["items"][0]["prev_hash"] == history["items"][1]["hash"]


def test_a_firms_versions_are_its_hash_chain(client, world):
    agent = world["agent"]
    _, chain = get(client, f"/api/v1/firms/{agent.credit_code}/versions")
    assert [v["seq"] for v in chain["items"]] == [4, 3, 2, 1] and chain["chain_head"] == chain["items"][0]["hash"]
    for newer, older in zip(chain["items"], chain["items"][1:]):
        assert newer["prev_hash"] == older["hash"]
    _, paged = get(client, f"/api/v1/firms/{agent.credit_code}/versions?per_page=3&page=2")
    assert [v["seq"] for v in paged["items"]] == [1] and paged["pages"] == 2
    _, then = get(client, f"/api/v1/firms/{agent.credit_code}/versions?as_of={days(-200).isoformat()}")
    assert [(v["seq"], v["amount"]) for v in then["items"]] == [(1, "400.00")]


def test_a_withdrawn_item_is_out_of_force_but_keeps_its_history(client, session, world):
    doc = world["doc"]
    registry.withdraw_item(session, doc, world["pub_agent"], days(-1), allow_backdate=True)
    session.commit()
    assert doc.id not in {i["item_id"] for i in get(client, "/api/v1/fee-items")[1]["items"]}
    _, item = get(client, f"/api/v1/fee-items/{doc.id}")
    assert item["status"] == "withdrawn" and item["in_force"] is None
    assert [v["kind"] for v in item["versions"]] == ["withdraw", "publish"]


def test_a_draft_is_not_published_data(client, session, world):
    draft = registry.create_draft(session, world["agent"], item_values(fee_type="EIR", name_zh="设备交接单费"),
                                  world["pub_agent"])
    session.commit()
    response, body = get(client, f"/api/v1/fee-items/{draft.id}")
    assert response.status_code == 404 and body["detail"] == f"No published fee item {draft.id}."


# --- search, compare, catalog ------------------------------------------------------------

@pytest.mark.search_backends
def test_search_uses_the_search_service_with_its_facets(client, world):
    _, body = get(client, "/api/v1/search?q=吊箱")
    assert [r["item_id"] for r in body["items"]] == [world["lolo"].id] and body["total"] == 1
    assert body["items"][0]["firm"]["credit_code"] == world["yard"].credit_code
    assert {"value": "YANTIAN", "count": 1} in body["facets"]["port"]
    _, thc = get(client, "/api/v1/search?q=THC")
    assert [r["item_id"] for r in thc["items"]] == [world["thc"].id] and thc["items"][0]["amount"] == "520.00"
    _, narrowed = get(client, "/api/v1/search?q=THC&port=YANTIAN")
    assert narrowed["items"] == [] and narrowed["filters"] == {"port": "YANTIAN"}
    _, quoted = get(client, "/api/v1/search?q=%22THC")  # searched, with a word about the stray quote
    assert quoted["total"] == 1 and any("quotation mark" in n for n in quoted["notices"])


@pytest.mark.parametrize("query, parameter, words", [
    ("", "q", "is required"),
    ("?q=*", "q", "wildcards"),
    ("?q=" + "x" * 300, "q", "too long"),
    ("?q=THC&sort=cheapest", "sort", "amount_desc"),
    ("?q=THC&page=400&per_page=50", "page", "first 10000 results"),
])
def test_search_refusals_name_the_parameter(client, world, query, parameter, words):
    response, body = get(client, f"/api/v1/search{query}")
    assert response.status_code == 400 and body["parameter"] == parameter and words in body["detail"]


def test_compare_gives_statistics_and_paginated_rows(client, session, world):
    other = world["yard"]
    # A second THC, at another firm, so there is something to rank.
    from .factories import publish
    publish(other, world["pub_yard"], days(-5), fee_type="THC", name_zh="码头操作费", unit="per_container",
            container_size="40", amount="700", ports="SHEKOU")
    session.commit()
    _, body = get(client, "/api/v1/compare/thc?container_size=40&per_page=1")
    assert body["fee_type"]["code"] == "THC" and body["firm_count"] == 2 and body["total"] == 2
    assert body["stats"]["min"] == "520.00" and body["stats"]["max"] == "700.00" and body["stats"]["count"] == 2
    assert [r["amount_cny"] for r in body["items"]] == ["520.00"] and body["pages"] == 2
    _, second = get(client, body["links"]["next"])
    assert [r["firm"]["credit_code"] for r in second["items"]] == [other.credit_code]
    _, desc = get(client, "/api/v1/compare/THC?order=desc")
    assert [r["amount"] for r in desc["items"]] == ["700.00", "520.00"]
    _, then = get(client, f"/api/v1/compare/THC?as_of={days(-200).isoformat()}")
    assert [r["amount"] for r in then["items"]] == ["400.00"] and then["as_of"] == days(-200).isoformat()
    response, missing = get(client, "/api/v1/compare/NOSUCHFEE")
    assert response.status_code == 404 and "NOSUCHFEE" in missing["detail"]


def test_the_fee_catalog(client, world):
    _, yard = get(client, "/api/v1/fee-types?group=yard&per_page=200")
    assert yard["items"] and {ft["group"] for ft in yard["items"]} == {"yard"}
    _, doc = get(client, "/api/v1/fee-types/doc")
    assert doc["code"] == "DOC" and "单证费" in doc["aliases"]
    response, body = get(client, "/api/v1/fee-types?group=nonsense")
    assert response.status_code == 400 and body["parameter"] == "group" and "yard" in body["detail"]


# --- caching -----------------------------------------------------------------------------

def test_a_repeated_request_is_answered_304_until_the_data_changes(client, session, world):
    url = f"/api/v1/fee-items?firm={world['agent'].credit_code}"
    first = client.get(url)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["Cache-Control"] == "public, max-age=60"
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    since = client.get(url, headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status_code == 304

    registry.update_draft(session, world["doc"], item_values(amount="460", ports="SHEKOU"), world["pub_agent"], None)
    registry.publish_item(session, world["doc"], world["pub_agent"], days(0))
    session.commit()
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert "460.00" in {i["amount"] for i in changed.get_json()["items"]}


def test_last_modified_follows_firm_changes_too(client, session, world):
    yard = world["yard"]
    url = f"/api/v1/firms/{yard.credit_code}"
    first = client.get(url)
    stamp = first.last_modified
    assert stamp is not None
    firms.set_status(session, yard, "suspended", "未按规定公示", world["admin"])
    session.commit()
    later = client.get(url)
    assert later.last_modified >= stamp and later.get_json()["status"] == "suspended"
    assert client.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 200


def test_an_answer_about_today_is_never_older_than_today(client, world):
    from feereg.services.open_data import start_of_today_utc

    today_answer = client.get("/api/v1/fee-items?fee_type=DOC")
    dated_answer = client.get(f"/api/v1/fee-items?fee_type=DOC&as_of={days(0).isoformat()}")
    start = start_of_today_utc().replace(microsecond=0)
    assert today_answer.last_modified.replace(tzinfo=None) >= start
    # The same data with a fixed date changes only when someone publishes.
    assert dated_answer.last_modified <= today_answer.last_modified


# --- errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("url, parameter, words", [
    ("/api/v1/fee-items?as_of=2025-13-01", "as_of", "not a date"),
    ("/api/v1/fee-items?as_of=yesterday", "as_of", "YYYY-MM-DD"),
    ("/api/v1/firms?page=0", "page", "between 1 and"),
    ("/api/v1/firms?page=two", "page", "not a whole number"),
    ("/api/v1/firms?per_page=500", "per_page", "between 1 and 200"),
    ("/api/v1/firms?port=MARS", "port", "YANTIAN"),
    ("/api/v1/firms?colour=red", "colour", "unknown parameter"),
    ("/api/v1/firms?port=YANTIAN&port=SHEKOU", "port", "more than once"),
    ("/api/v1/fee-items?firm=91440300XXXXXXXXXX", "firm", "no firm"),
    ("/api/v1/fee-items?fee_type=NOPE", "fee_type", "not a fee type"),
    ("/api/v1/fee-items?container_size=50", "container_size", "any"),
])
def test_bad_parameters_are_400_problems_naming_the_parameter(client, world, url, parameter, words):
    response, body = get(client, url)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json" and response.headers["Cache-Control"] == "no-store"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert body["status"] == 400 and body["title"] == "Bad Request" and body["parameter"] == parameter
    assert words in body["detail"] and body["detail"].startswith(f"{parameter}: ")


def test_unknown_paths_and_methods_are_json_under_the_api_and_html_elsewhere(client, world):
    response, body = get(client, "/api/v1/no-such-thing")
    assert response.status_code == 404 and "/api/v1/openapi.json" in body["detail"]
    response, body = get(client, "/api/v1/firms/x/y/z")
    assert response.status_code == 404
    response = client.post("/api/v1/firms", data={"name": "x"})
    assert response.status_code == 405 and response.is_json and "GET" in response.headers["Allow"]
    assert "POST is not allowed on /api/v1/firms" in response.get_json()["detail"]
    response = client.delete(f"/api/v1/fee-items/{world['thc'].id}")
    assert response.status_code == 405 and response.get_json()["status"] == 405
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.mimetype == "text/html" and "<html" in page.get_data(as_text=True)
    assert client.post("/firms").mimetype == "text/html"


def test_a_failure_is_a_json_500_and_a_database_outage_a_503(migrated, tmp_path, world):
    # A real misconfiguration: exchange rates that cannot be read break the comparison.
    app = create_app({**_test_config(migrated, tmp_path), "EXCHANGE_RATES": "not a list",
                      "PROPAGATE_EXCEPTIONS": False})
    try:
        response = app.test_client().get("/api/v1/compare/THC")
        assert response.status_code == 500 and response.is_json
        assert response.get_json()["detail"] == "Something went wrong on our side; try again later."
        assert app.test_client().get("/compare/THC").mimetype == "text/html"
    finally:
        with app.app_context():
            db.engine.dispose()


def test_too_many_requests_is_a_json_429(migrated, tmp_path, world):
    app = create_app({**_test_config(migrated, tmp_path), "RATELIMIT_ENABLED": True,
                      "API_RATE_LIMIT": "3 per minute"})
    client = app.test_client()
    try:
        statuses = [client.get("/api/v1/fee-types").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        response = client.get("/api/v1/firms")
        assert response.status_code == 429 and response.is_json and response.get_json()["status"] == 429
        assert "Retry-After" in response.headers or "X-RateLimit-Reset" in response.headers
        assert client.get("/firms").status_code == 200  # the site's pages are not the API's allowance
    finally:
        with app.app_context():
            db.engine.dispose()


def test_the_index_lists_every_endpoint(client, world):
    _, body = get(client, "/api/v1/")
    assert body["openapi"] == "/api/v1/openapi.json" and body["documentation"] == "/api"
    assert body["endpoints"]["GET /api/v1/fee-items"] == "Fee items in force"
    assert "GET /api/v1/regulator/flags" in body["endpoints"]
