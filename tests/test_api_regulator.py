"""The regulator endpoints of the API and their bearer tokens: 401 without a valid token, 403
for a token whose owner is not a regulator, flags and complaints filtered; the tokens page
(shown once, revoked with a POST) and the `feereg token` command."""
from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import select

from feereg.models import ApiToken, AuditEvent
from feereg.services import api_tokens
from feereg.services.errors import PermissionDenied

from .api_world import bearer, build_world
from .audit_factories import make_flag
from .conftest import login, post_form
from .factories import make_user

FLAGS = "/api/v1/regulator/flags"
COMPLAINTS = "/api/v1/regulator/complaints"


@pytest.fixture
def world(session):
    return build_world(session)


def test_no_token_or_a_bad_one_is_401(client, world):
    for headers in ({}, {"Authorization": "Basic dXNlcjpwdw=="}, bearer(""), bearer("feereg_not-a-real-token"),
                    bearer(world["token"] + "x"), {"Authorization": world["token"]}):
        response = client.get(FLAGS, headers=headers)
        assert response.status_code == 401, headers
        assert response.is_json and response.get_json()["status"] == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in client.get(COMPLAINTS).get_json()["detail"]


def test_a_logged_in_regulator_still_needs_a_token(client, world):
    login(client, world["regulator"].email)
    assert client.get(FLAGS).status_code == 401


def test_a_token_whose_owner_is_no_longer_a_regulator_is_403(client, session, world):
    world["regulator"].role = "admin"
    session.commit()
    response = client.get(FLAGS, headers=bearer(world["token"]))
    assert response.status_code == 403 and response.is_json
    assert "not a regulator" in response.get_json()["detail"]


def test_tokens_are_issued_to_regulators_only(session, world):
    for who in ("pub_agent", "admin"):
        with pytest.raises(PermissionDenied):
            api_tokens.create_token(session, world[who], "mine")


def test_a_revoked_token_or_a_disabled_account_is_401(client, session, world):
    headers = bearer(world["token"])
    assert client.get(FLAGS, headers=headers).status_code == 200
    world["regulator"].active = False
    session.commit()
    assert client.get(FLAGS, headers=headers).status_code == 401
    world["regulator"].active = True
    api_tokens.revoke_token(session, world["token_row"], world["regulator"])
    session.commit()
    assert client.get(FLAGS, headers=headers).status_code == 401


def test_only_the_hash_is_stored_and_use_is_recorded(client, session, world):
    row = world["token_row"]
    assert row.token_hash == hashlib.sha256(world["token"].encode()).hexdigest()
    stored = session.execute(select(ApiToken.__table__)).mappings().one()
    assert world["token"] not in {str(v) for v in stored.values()}
    assert row.last_used_at is None
    client.get(COMPLAINTS, headers=bearer(world["token"]))
    session.expire_all()
    assert session.get(ApiToken, row.id).last_used_at is not None


def test_flags_are_filtered_by_status_rule_and_firm(client, session, world):
    yard, agent = world["yard"], world["agent"]
    make_flag(agent, "DUPLICATE", "medium", status="dismissed")
    session.commit()
    headers = bearer(world["token"])

    def listed(query=""):
        response = client.get(f"{FLAGS}{query}", headers=headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    everything = listed()
    assert everything["total"] >= 3  # the planted two, and what the checks raised on publishing
    open_peer = listed("?status=open&rule=PEER_OUTLIER")
    assert [f["id"] for f in open_peer["items"]] == [world["flag"].id]
    assert open_peer["items"][0]["firm"]["credit_code"] == yard.credit_code
    assert open_peer["items"][0]["item_id"] == world["lolo"].id
    dismissed = listed("?status=dismissed")
    assert [(f["rule"], f["firm"]["credit_code"]) for f in dismissed["items"]] == [("DUPLICATE", agent.credit_code)]
    by_firm = listed(f"?firm={agent.credit_code}")
    assert by_firm["items"] and {f["firm"]["credit_code"] for f in by_firm["items"]} == {agent.credit_code}
    one = client.get(f"{FLAGS}/{world['flag'].id}", headers=headers)
    assert one.get_json()["rule"] == "PEER_OUTLIER" and one.get_json()["severity"] == "high"
    assert client.get(f"{FLAGS}?rule=MADE_UP", headers=headers).get_json()["parameter"] == "rule"
    assert client.get(f"{FLAGS}/999999", headers=headers).status_code == 404


def test_complaints_are_filtered_and_never_cached(client, world):
    headers = bearer(world["token"])
    response = client.get(f"{COMPLAINTS}?status=open&firm={world['yard'].credit_code}", headers=headers)
    body = response.get_json()
    assert [c["id"] for c in body["items"]] == [world["complaint"].id]
    assert body["items"][0]["fee_name"] == "换单费" and body["items"][0]["amount"] == "300.00"
    assert body["items"][0]["contact"] == "赵六 13800001111"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "Access-Control-Allow-Origin" not in response.headers
    assert client.get(f"{COMPLAINTS}?status=closed", headers=headers).get_json()["items"] == []
    assert client.get(f"{COMPLAINTS}?firm={world['agent'].credit_code}", headers=headers).get_json()["total"] == 0
    again = client.get(f"{COMPLAINTS}?status=open&firm={world['yard'].credit_code}",
                       headers={**headers, "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.headers["Cache-Control"] == "private, no-store"
    one = client.get(f"{COMPLAINTS}/{world['complaint'].id}", headers=headers).get_json()
    assert one["status"] == "received" and one["firm"]["credit_code"] == world["yard"].credit_code


def test_parameters_are_not_checked_before_the_token(client, world):
    assert client.get(f"{FLAGS}?rule=MADE_UP").status_code == 401


# --- the tokens page ---------------------------------------------------------------------

TOKEN_RE = re.compile(r'value="(feereg_[A-Za-z0-9_-]+)"')


def test_a_regulator_creates_a_token_shown_once_and_revokes_it(client, session, world):
    login(client, world["regulator"].email)
    page = post_form(client, "/regulator/tokens", {"name": "nightly export"})
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    clear = TOKEN_RE.search(body).group(1)
    assert "nightly export" in body
    assert client.get(FLAGS, headers=bearer(clear)).status_code == 200
    listing = client.get("/regulator/tokens").get_data(as_text=True)
    assert "nightly export" in listing and clear not in listing  # never shown again

    row = session.scalar(select(ApiToken).where(ApiToken.name == "nightly export"))
    assert client.post(f"/regulator/tokens/{row.id}/revoke").status_code == 400  # no CSRF token
    response = post_form(client, f"/regulator/tokens/{row.id}/revoke", {}, form_page="/regulator/tokens")
    assert response.status_code == 302
    assert client.get(FLAGS, headers=bearer(clear)).status_code == 401
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("api_token.%"))))
    assert actions == {"api_token.create", "api_token.revoke"}


def test_a_regulator_cannot_revoke_anothers_token(client, session, world):
    other = make_user("regulator")
    session.commit()
    login(client, other.email)
    response = post_form(client, f"/regulator/tokens/{world['token_row'].id}/revoke", {},
                         form_page="/regulator/tokens")
    assert response.status_code == 404
    assert client.get(FLAGS, headers=bearer(world["token"])).status_code == 200


def test_the_tokens_page_refuses_an_empty_name_and_non_regulators(client, world):
    login(client, world["regulator"].email)
    page = post_form(client, "/regulator/tokens", {"name": "  "}).get_data(as_text=True)
    assert not TOKEN_RE.search(page)
    publisher = client.application.test_client()
    login(publisher, world["pub_agent"].email)
    assert publisher.get("/regulator/tokens").status_code == 403
    admin = client.application.test_client()
    login(admin, world["admin"].email)
    refused = post_form(admin, "/regulator/tokens", {"name": "admin script"}, follow_redirects=True)
    assert not TOKEN_RE.search(refused.get_data(as_text=True))


# --- the command line --------------------------------------------------------------------

def test_feereg_token_create_list_and_revoke(app, runner, client, session, world):
    email = world["regulator"].email
    result = runner.invoke(args=["token", "create", "--email", email, "--name", "cron"])
    assert result.exit_code == 0, result.output
    clear = result.stdout.strip().splitlines()[-1]
    assert clear.startswith("feereg_")
    assert client.get(COMPLAINTS, headers=bearer(clear)).status_code == 200
    listed = runner.invoke(args=["token", "list", "--email", email]).output
    assert "cron" in listed and "test script" in listed and clear not in listed
    row = session.scalar(select(ApiToken).where(ApiToken.name == "cron"))
    assert runner.invoke(args=["token", "revoke", str(row.id)]).exit_code == 0
    session.expire_all()
    assert client.get(COMPLAINTS, headers=bearer(clear)).status_code == 401
    refused = runner.invoke(args=["token", "create", "--email", world["pub_agent"].email, "--name", "x"])
    assert refused.exit_code != 0 and "Error" in refused.output
    missing = runner.invoke(args=["token", "create", "--email", "nobody@example.com", "--name", "x"])
    assert missing.exit_code != 0 and "no account" in missing.output
