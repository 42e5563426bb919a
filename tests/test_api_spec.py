"""The OpenAPI document and the API agree: every route is described with exactly the
parameters its view takes, every description is a route, real answers have the documented
shape; and the /api page shows it in both languages."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest

from feereg.api_spec import openapi_document, operations, resolve

from .api_world import bearer, build_world, days
from .openapi_check import problems, response_schema

PREFIX = "/api/v1"


@pytest.fixture
def world(session):
    return build_world(session)


def openapi_path(rule: str) -> str:
    """/api/v1/fee-items/<int:item_id> → /api/v1/fee-items/{item_id}"""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def api_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.rule.startswith(PREFIX)]


def test_every_route_is_documented_and_every_documented_path_is_a_route(app):
    document = openapi_document()
    routes = {(openapi_path(rule.rule), method.lower()) for rule in api_rules(app)
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, method, _op in operations(document)}
    assert routes == documented
    assert ("/api/v1/regulator/complaints/{complaint_id}", "get") in routes  # the walk found them all


def test_each_route_takes_exactly_its_documented_parameters(app):
    document = openapi_document()
    for rule in api_rules(app):
        operation = document["paths"][openapi_path(rule.rule)]["get"]
        params = [resolve(document, p) for p in operation["parameters"]]
        query = {p["name"] for p in params if p["in"] == "query"}
        path = {p["name"] for p in params if p["in"] == "path"}
        view = app.view_functions[rule.endpoint]
        assert query == set(view.api_params), rule.rule
        assert path == set(rule.arguments), rule.rule
        assert all(p["required"] for p in params if p["in"] == "path")
        assert operation["summary"] and operation["description"], rule.rule
        assert ("security" in operation) == rule.rule.startswith(f"{PREFIX}/regulator/"), rule.rule


def test_each_example_is_a_call_of_its_own_endpoint(app):
    document = openapi_document()
    adapter = app.url_map.bind("localhost")
    for path, method, operation in operations(document):
        example = urlsplit(operation["x-example"])
        endpoint, _args = adapter.match(example.path, method=method.upper())
        rule = next(r for r in api_rules(app) if r.endpoint == endpoint)
        assert openapi_path(rule.rule) == path
        documented = {resolve(document, p)["name"] for p in operation["parameters"]}
        assert {name for name, _ in parse_qsl(example.query)} <= documented, operation["x-example"]


def test_every_reference_resolves(app):
    document = openapi_document()
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                found.append(node["$ref"])
                resolve(document, node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert len(found) > 50


def test_real_answers_have_the_documented_shape(client, world):
    document = client.get(f"{PREFIX}/openapi.json").get_json()
    assert document["openapi"] == "3.1.0" and document["info"]["summary"].startswith("The port fee registry")
    agent, thc = world["agent"], world["thc"]
    public = {
        "/api/v1/": "/api/v1/",
        "/api/v1/openapi.json": "/api/v1/openapi.json",
        "/api/v1/firms": "/api/v1/firms",
        "/api/v1/firms/{code}": f"/api/v1/firms/{agent.credit_code}",
        "/api/v1/firms/{code}/versions": f"/api/v1/firms/{agent.credit_code}/versions",
        "/api/v1/fee-items": "/api/v1/fee-items",
        "/api/v1/fee-items/{item_id}": f"/api/v1/fee-items/{thc.id}?as_of={days(-200).isoformat()}",
        "/api/v1/fee-items/{item_id}/versions": f"/api/v1/fee-items/{thc.id}/versions",
        "/api/v1/search": "/api/v1/search?q=THC",
        "/api/v1/compare/{code}": "/api/v1/compare/THC",
        "/api/v1/fee-types": "/api/v1/fee-types",
        "/api/v1/fee-types/{code}": "/api/v1/fee-types/THC",
    }
    regulator = {
        "/api/v1/regulator/flags": "/api/v1/regulator/flags",
        "/api/v1/regulator/flags/{flag_id}": f"/api/v1/regulator/flags/{world['flag'].id}",
        "/api/v1/regulator/complaints": "/api/v1/regulator/complaints",
        "/api/v1/regulator/complaints/{complaint_id}": f"/api/v1/regulator/complaints/{world['complaint'].id}",
    }
    for path, url in {**public, **regulator}.items():
        response = client.get(url, headers=bearer(world["token"]) if path in regulator else {})
        assert response.status_code == 200, url
        body = response.get_json()
        assert body.get("items", [body]) or path.endswith("flags"), url
        assert problems(document, response_schema(document, path), body) == [], url
    # A comparison with no rows has no statistics: null, as documented.
    empty = client.get(f"{PREFIX}/compare/EIR").get_json()
    assert empty["stats"] is None and problems(document, response_schema(document, "/api/v1/compare/{code}"), empty) == []
    # Errors are documented problems too.
    for url, status, path in ((f"{PREFIX}/fee-items?as_of=soon", "400", "/api/v1/fee-items"),
                              (f"{PREFIX}/firms/nobody", "404", "/api/v1/firms/{code}"),
                              (f"{PREFIX}/regulator/flags", "401", "/api/v1/regulator/flags")):
        response = client.get(url)
        assert response.status_code == int(status)
        assert problems(document, response_schema(document, path, status), response.get_json()) == [], url


def test_the_checker_catches_a_wrong_answer(client, world):
    document = client.get(f"{PREFIX}/openapi.json").get_json()
    body = client.get(f"{PREFIX}/firms/{world['agent'].credit_code}").get_json()
    schema = response_schema(document, "/api/v1/firms/{code}")
    del body["credit_code"]
    body["category"] = "pirate"
    body["surprise"] = 1
    found = problems(document, schema, body)
    assert any("credit_code" in p for p in found) and any("pirate" in p for p in found)
    assert any("surprise" in p for p in found)


# --- the documentation page --------------------------------------------------------------

def test_the_api_page_documents_every_endpoint_in_chinese_by_default(client, world):
    page = client.get("/api")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html lang=\"zh-CN\"" in html
    assert "开放数据接口" in html and "需要令牌" in html
    for path, method, _op in operations(openapi_document()):
        assert f'<code class="mono">{path}</code>' in html, path
    assert "curl -i &#39;http://localhost/api/v1/fee-items?fee_type=THC&amp;port=YANTIAN&amp;container_size=40&#39;" in html
    assert "Authorization: Bearer $FEEREG_TOKEN" in html
    assert "<script" not in html and " style=" not in html
    assert 'href="/api"' in client.get("/").get_data(as_text=True)  # the footer links it


def test_the_api_page_in_english(client, world):
    html = client.get("/api?lang=en").get_data(as_text=True)
    assert "Open data API" in html and "Fee items in force" in html and "List firms" in html
    assert "YYYY-MM-DD" in html and "1–200" in html
