"""CSRF: every rule that takes POST, PUT, PATCH or DELETE refuses a request without a valid
token — sent by a visitor the route matrix allows, logged in, with the very payload that
works with a token — with the site's 400 page, and changes nothing.

The open data API (/api/v1) is the one exemption (csrf.exempt on its blueprint): it takes no
write method at all, and its regulator endpoints read the bearer token from the
Authorization header, never the session cookie, so a cross-site request carries no
credential there. A test holds both facts, so an exemption can never quietly cover a write.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from flask import url_for

from feereg.extensions import csrf

from .conftest import csrf_token, login
from .test_route_matrix import ROLES, TABLE, fingerprint, world_site

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture(scope="module")
def site(migrated, tmp_path_factory):
    with world_site(migrated, tmp_path_factory, "csrf") as (app, world):
        clients = {role: app.test_client() for role in ROLES}
        for role, email in world.emails.items():
            login(clients[role], email)
        yield SimpleNamespace(app=app, world=world, clients=clients)


def _write_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.methods & WRITE_METHODS]


def _url(site, endpoint: str) -> str:
    with site.app.test_request_context():
        return url_for(endpoint, **TABLE[endpoint].args(site.world))


def _payload(site, endpoint: str) -> dict:
    with site.app.test_request_context():
        return TABLE[endpoint].payload(site.world)


def _allowed_role(endpoint: str) -> str:
    return next(role for role, expect in TABLE[endpoint].post.items() if expect.allowed)


def _assert_refused(site, endpoint: str, response, before: str):
    assert response.status_code == 400, (endpoint, response.status_code)
    page = response.get_data(as_text=True)
    assert "表单已过期或并非从本站提交" in page, endpoint
    assert fingerprint() == before, f"{endpoint}: a request without a CSRF token changed the database"


def test_every_write_without_a_token_is_refused_and_changes_nothing(site):
    rules = [r for r in _write_rules(site.app) if not r.endpoint.startswith("api.")]
    assert len(rules) >= 20
    for rule in rules:
        assert TABLE.get(rule.endpoint) and TABLE[rule.endpoint].post, f"{rule.endpoint}: not in the route matrix"
        assert rule.methods & WRITE_METHODS == {"POST"}, f"{rule.endpoint}: a write method the matrix does not cover"
        role = _allowed_role(rule.endpoint)
        route = TABLE[rule.endpoint]
        before = fingerprint()
        response = site.clients[role].post(_url(site, rule.endpoint), data=_payload(site, rule.endpoint),
                                           content_type="multipart/form-data" if route.multipart else None)
        _assert_refused(site, rule.endpoint, response, before)


def test_a_token_from_another_session_is_refused(site):
    """A token is bound to its session: one read from an attacker's own session is no use."""
    attacker = site.app.test_client()
    stolen = csrf_token(attacker, "/account/login")
    for endpoint in ("publisher.new_item", "regulator.policy", "admin.user_active", "account.password"):
        role = _allowed_role(endpoint)
        before = fingerprint()
        response = site.clients[role].post(_url(site, endpoint), data={**_payload(site, endpoint),
                                                                       "csrf_token": stolen})
        _assert_refused(site, endpoint, response, before)


def test_over_https_a_post_from_another_site_is_refused(site):
    """Over https the Referer must be this site (Flask-WTF's strict check): a token that
    leaked is still no use from another origin."""
    client = site.app.test_client()
    login(client, site.world.emails["regulator"])
    token = csrf_token(client, "/account/login")
    url = _url(site, "regulator.tokens")
    before = fingerprint()
    response = client.post(url, base_url="https://localhost", data={"name": "x", "csrf_token": token},
                           headers={"Referer": "https://evil.example/form"})
    _assert_refused(site, "regulator.tokens", response, before)
    response = client.post(url, base_url="https://localhost", data={"name": "same-site", "csrf_token": token},
                           headers={"Referer": "https://localhost/regulator/tokens"})
    assert response.status_code == 200 and "same-site" in response.get_data(as_text=True)


def test_only_the_read_only_api_is_exempt(site):
    assert csrf._exempt_views == set()
    assert {getattr(bp, "name", bp) for bp in csrf._exempt_blueprints} == {"api"}
    api_rules = [r for r in site.app.url_map.iter_rules() if r.endpoint.startswith("api.")]
    assert api_rules and not [r for r in api_rules if r.methods & WRITE_METHODS]
    # The regulator endpoints ignore the session: a logged-in regulator's cookie alone gets 401.
    assert site.clients["regulator"].get("/api/v1/regulator/flags").status_code == 401
